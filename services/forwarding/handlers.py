"""Forwarding commands: targets created, changed and removed, quarantined statements
marked for replay. One method a command, one transaction a method. The forwarder
(forwarder.py) reads what these write: it never takes orders from the web tier directly,
so a web process never waits for a target."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.forwarding import tables as t
from services.forwarding.domain import Filter, check_url
from shared import db, xapi
from shared.config import Settings
from shared.errors import Conflict, NotFound


def _row(data: dict) -> dict:
    return {"name": data["name"], "url": check_url(data["url"]), "xapi_version": data["xapi_version"],
            "username": data["username"], "filter": Filter.of(data["filter"]).as_dict(), "enabled": data["enabled"],
            "batch_size": data["batch_size"], "timeout_seconds": data["timeout_seconds"]}


def _require(conn, target_id: str):
    row = conn.execute(sa.select(t.targets).where(t.targets.c.id == target_id)).first()
    if row is None:
        raise NotFound(f"no target {target_id}")
    return row


class ForwardingService:
    def __init__(self, settings: Settings, engine: Engine, clock=xapi.utc_now):
        self.settings, self.engine, self.clock = settings, engine, clock

    def create(self, data: dict, operator: str) -> str:
        now = self.clock()
        row = _row(data) | {"id": str(uuid.uuid4()), "password": data.get("password") or "", "revision": 1,
                            "created_at": now, "updated_at": now, "updated_by": operator}
        try:
            with self.engine.begin() as conn:
                conn.execute(t.targets.insert().values(row))
        except IntegrityError:
            raise Conflict(f"a target named {data['name']!r} exists already", "name") from None
        return row["id"]

    def replace(self, target_id: str, data: dict, operator: str) -> None:
        """Every setting as given; the password only if given (it is never read back, so
        a client cannot send the old one again). The forwarder restarts the target's loop
        from its stored offsets: what was delivered stays delivered. A stopped target
        (too many refusals) starts again."""
        values = _row(data) | {"updated_at": self.clock(), "updated_by": operator,
                               "revision": t.targets.c.revision + 1}
        if "password" in data:
            values["password"] = data["password"]
        try:
            with self.engine.begin() as conn:
                _require(conn, target_id)
                conn.execute(t.targets.update().where(t.targets.c.id == target_id).values(values))
                conn.execute(t.target_status.update().where(t.target_status.c.target_id == target_id)
                             .values(stopped=False))
        except IntegrityError:
            raise Conflict(f"a target named {data['name']!r} exists already", "name") from None

    def delete(self, target_id: str) -> None:
        """The target, its offsets, status and quarantine. Created again, a target starts
        from offset zero (the topics are kept forever) under a new id."""
        with self.engine.begin() as conn:
            _require(conn, target_id)
            for table in (t.target_offsets, t.target_status, t.quarantine):
                conn.execute(table.delete().where(table.c.target_id == target_id))
            conn.execute(t.targets.delete().where(t.targets.c.id == target_id))

    def request_replay(self, target_id: str, statement_ids: list[str] | None) -> int:
        """Mark quarantined statements (all unresolved ones, or these) to be sent again;
        the target's loop sends them before its next batch. Returns how many were marked."""
        q = t.quarantine
        with self.engine.begin() as conn:
            _require(conn, target_id)
            where = [q.c.target_id == target_id, q.c.resolved_at.is_(None)]
            if statement_ids is None:
                return conn.execute(q.update().where(*where).values(replay_requested_at=self.clock())).rowcount
            marked = 0
            for chunk in db.chunks(sorted(set(statement_ids))):
                marked += conn.execute(q.update().where(*where, q.c.statement_id.in_(chunk))
                                       .values(replay_requested_at=self.clock())).rowcount
            return marked
