"""The unit of work: one command, one transaction (docs/architecture.md, Writing).

A command handler opens a unit of work, reads and writes through its repositories
(`uow.repo`), hands the events its change produced to `publish`, and calls `commit`.
Committing stages those events in the outbox inside the same database transaction as the
state change, so "the state and its statements, together or not at all" holds by
construction: a command has no other way to publish. Leaving the block without
`commit`, or with an exception, rolls everything back, the events included.

Handlers depend only on `UnitOfWork`. Unit tests give them an in-memory one
(tests/unit/fakes.py) and run every command without a database or a broker; the
services give them `SqlUnitOfWork`. After *Architecture Patterns with Python*,
service_layer/unit_of_work.py.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared import outbox
from shared.consumer import replaying
from shared.events import Event

R = TypeVar("R")


class UnitOfWork(Generic[R]):
    """What a command handler sees: repositories, `publish`, `commit`.

    Not re-entrant: each `with` block is one transaction."""

    repo: R
    # True while a projection rebuilds its read models from the topics: what the live run
    # did (issued, revoked, announced) is done already and must not be done again.
    replaying: bool = False

    def __init__(self) -> None:
        self._events: list[Event] = []

    def __enter__(self) -> UnitOfWork[R]:
        self._events = []
        self._begin()
        return self

    def __exit__(self, *exc_info) -> None:
        self._events = []
        self._end()  # rolls back whatever was not committed

    def publish(self, *events: Event) -> None:
        """Announce these events if, and only if, this unit of work commits."""
        self._events.extend(events)

    def commit(self) -> None:
        events, self._events = self._events, []
        self._commit(events)

    # --- what a store provides ----------------------------------------------------------------

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError


class _OnConnection(UnitOfWork[R]):
    """A unit of work over a SQLAlchemy connection: committed events are staged in the
    service's outbox table, for its own topic, on that connection (shared.outbox)."""

    _conn: Connection | None
    outbox_table: sa.Table | None
    topic: str

    def _stage(self, events: list[Event]) -> None:
        if not events:
            return
        if self.outbox_table is None:
            raise RuntimeError(f"a command published {len(events)} event(s) in a service without an outbox")
        outbox.append(self._conn, self.outbox_table, self.topic, events)


class SqlUnitOfWork(_OnConnection[R]):
    """A transaction on the service's database; committed events go to its outbox table,
    for its own topic, and the relay (shared.relay) publishes them afterwards. A service
    that publishes nothing (forwarding) has no outbox: `outbox_table` None.

    `repositories` builds the service's repositories over the transaction's connection."""

    def __init__(self, engine: Engine, outbox_table: sa.Table | None, topic: str,
                 repositories: Callable[[Connection], R]):
        super().__init__()
        self.engine = engine
        self.outbox_table = outbox_table
        self.topic = topic
        self._repositories = repositories
        self._conn: Connection | None = None

    def _begin(self) -> None:
        self._conn = self.engine.connect()
        self._conn.begin()
        self.repo = self._repositories(self._conn)

    def _commit(self, events: list[Event]) -> None:
        self._stage(events)
        self._conn.commit()

    def _end(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # rolls back a transaction still open


class WithinTransaction(_OnConnection[R]):
    """A unit of work inside a transaction someone else owns and commits: a projection's
    batch, which issues certificates as part of applying the records (shared.consumer
    commits the batch with its offsets). `commit` stages the events in the outbox;
    the batch's own commit, or its rollback, decides their fate with everything else."""

    def __init__(self, conn: Connection, outbox_table: sa.Table, topic: str, repo: R):
        super().__init__()
        self._conn = conn
        self.outbox_table = outbox_table
        self.topic = topic
        self.repo = repo
        self.replaying = replaying(conn)

    def _begin(self) -> None:
        pass

    def _commit(self, events: list[Event]) -> None:
        self._stage(events)

    def _end(self) -> None:
        pass
