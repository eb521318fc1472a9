"""The LRS as a projection: every statement another learnstream service publishes is
stored in the LRS too, so GET /xapi/statements answers for the whole platform."""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from services.progress.lrs import store
from shared import xapi
from shared.consumer import replaying
from shared.events import EventType


def store_from_bus(conn: Connection, statements: list[dict]) -> None:
    """Idempotent by statement id (`store` skips ids already stored); keeps the
    producer's stored, authority and version. A rebuild replays statements the LRS holds
    already (it keeps them: they are not a read model), so then the stored ids are looked
    up first and only the others prepared and written."""
    if replaying(conn):
        stored = store.stored_ids(conn, [s["id"].lower() for s in statements])
        statements = [s for s in statements if s["id"].lower() not in stored]
    now = xapi.utc_now()
    batch = {}
    for statement in statements:
        statement = dict(statement)
        statement["id"] = statement["id"].lower()
        statement.setdefault("stored", xapi.format_timestamp(now))
        statement.setdefault("timestamp", statement["stored"])
        statement.setdefault("version", "1.0.0")
        batch[statement["id"]] = statement
    if batch:
        store.store(conn, list(batch.values()), outbox_table=None, topic=None, from_bus=True)


class AlsoStoredInLrs(Mapping):
    """Handlers by event type where every event type, known or not, is also stored in the
    LRS; but those of `private` (accounts: they carry secret hashes) are only projected."""

    def __init__(self, handlers: Mapping, private: Mapping | None = None):
        self._handlers = handlers
        self._private = dict(private or {})
        # One wrapper per inner handler: the runner gives consecutive records with the same
        # handler to one call (the final test's started, scored and passed, say).
        self._wrapped: dict = {}

    def __getitem__(self, event_type):
        if event_type in self._private:
            return self._private[event_type]
        inner = self._handlers.get(event_type)
        if event_type == EventType.LRS_STATEMENT:
            # The LRS's own statements, back from learnstream.lrs.v1: stored when accepted.
            if inner is None:
                raise KeyError(event_type)
            return inner
        if inner not in self._wrapped:
            self._wrapped[inner] = self._wrap(inner)
        return self._wrapped[inner]

    @staticmethod
    def _wrap(inner):
        def handle(conn: Connection, statements: list[dict]) -> None:
            if inner is not None:
                inner(conn, statements)
            store_from_bus(conn, statements)
        return handle

    def get(self, event_type, default=None):
        try:
            return self[event_type]
        except KeyError:
            return default

    def __iter__(self):
        return iter({**self._handlers, **self._private})

    def __len__(self):
        return len({**self._handlers, **self._private})
