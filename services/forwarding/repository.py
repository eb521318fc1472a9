"""Loading targets as domain objects, and the forwarder's writes (offsets are in forwarder.py).

`ForwardingRepository` is what the operators' commands see through their unit of work.
A target's password is stored sealed (shared.secrets): sealed here on the way in, opened
here on the way out, so nothing else ever handles the stored form."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.forwarding import tables as t
from services.forwarding.domain import Filter, Target
from shared import db, xapi
from shared.errors import NotFound
from shared.secrets import SecretBox, SecretUnreadable

log = logging.getLogger(__name__)


def target_from_row(row, box: SecretBox) -> Target:
    return Target(id=row.id, name=row.name, url=row.url, xapi_version=row.xapi_version, username=row.username,
                  password=box.open(row.password), filter=Filter.of(row.filter), enabled=row.enabled,
                  batch_size=row.batch_size, timeout_seconds=row.timeout_seconds, revision=row.revision)


def targets(conn: Connection, box: SecretBox) -> list[Target]:
    """Every target whose password this process can open. One it cannot (its key left out
    of a rotation) is left out and named in the log, so the others go on."""
    out = []
    for row in conn.execute(sa.select(t.targets).order_by(t.targets.c.name)):
        try:
            out.append(target_from_row(row, box))
        except SecretUnreadable as exc:
            log.error("not forwarding to a target whose password cannot be opened",
                      extra={"target": row.name, "error": str(exc)})
    return out


def _status_row(target_id: str) -> dict:
    return {"target_id": target_id, "delivered": 0, "last_delivered_at": None, "retrying": False,
            "stopped": False, "last_error": None, "updated_at": xapi.utc_now()}


def write_status(conn: Connection, target_id: str, *, retrying: bool, last_error: str | None,
                 delivered: int = 0, stopped: bool = False) -> None:
    s = t.target_status
    db.insert_ignoring_duplicates(conn, s, [_status_row(target_id)], ["target_id"])
    values = {"retrying": retrying, "last_error": last_error, "stopped": stopped, "updated_at": xapi.utc_now()}
    if delivered:
        values |= {"delivered": s.c.delivered + delivered, "last_delivered_at": xapi.utc_now()}
    conn.execute(s.update().where(s.c.target_id == target_id).values(values))


def write_ends(conn: Connection, target_id: str, ends: dict[tuple[str, int], tuple[int, int]]) -> None:
    """The (low, high) watermarks of the partitions this forwarder holds. A partition it
    has delivered nothing of yet gets a row starting at its low mark, where it starts."""
    if not ends:
        return
    o = t.target_offsets
    db.insert_ignoring_duplicates(conn, o, [
        {"target_id": target_id, "topic": topic, "partition": partition, "next_offset": low, "end_offset": high}
        for (topic, partition), (low, high) in ends.items()], ["target_id", "topic", "partition"])
    conn.execute(o.update().where(o.c.target_id == target_id, o.c.topic == sa.bindparam("t"),
                                  o.c.partition == sa.bindparam("p")).values(end_offset=sa.bindparam("e")),
                 [{"t": topic, "p": partition, "e": high} for (topic, partition), (_, high) in ends.items()])
    db.insert_ignoring_duplicates(conn, t.target_status, [_status_row(target_id)], ["target_id"])


def quarantine(conn: Connection, target_id: str, refused: list[tuple]) -> None:
    """(record, event type, statement, status, body) each. A statement refused again (a
    redelivery after a crash) updates its row: one row per target and statement."""
    now = xapi.utc_now()
    rows = [{"target_id": target_id, "statement_id": statement["id"], "topic": record.topic,
             "partition": record.partition, "offset": record.offset, "event_type": event_type,
             "statement": statement, "status": status or 0, "response": body, "attempts": 1,
             "quarantined_at": now, "replay_requested_at": None, "resolved_at": None}
            for record, event_type, statement, status, body in refused]
    db.upsert(conn, t.quarantine, list({r["statement_id"]: r for r in rows}.values()), ["target_id", "statement_id"])


def replay_requested(conn: Connection, target_id: str, revision: int, limit: int) -> list:
    """Statements an operator asked to replay, if the target is still at `revision`: a
    replay is asked for after a fix (a PUT), and a loop still running with the settings
    from before it must leave the replay to the loop that replaces it."""
    q, tg = t.quarantine, t.targets
    return conn.execute(sa.select(q).join(tg, tg.c.id == q.c.target_id).where(
        q.c.target_id == target_id, tg.c.revision == revision, q.c.resolved_at.is_(None),
        q.c.replay_requested_at.is_not(None)).order_by(q.c.partition, q.c.offset).limit(limit)).all()


def settle_replays(conn: Connection, target_id: str, statement_ids: list[str], refused: dict) -> None:
    """Delivered: resolved. Refused again: the new answer kept, still in quarantine."""
    q = t.quarantine
    now = xapi.utc_now()
    delivered = [sid for sid in statement_ids if sid not in refused]
    for chunk in db.chunks(delivered):
        conn.execute(q.update().where(q.c.target_id == target_id, q.c.statement_id.in_(chunk))
                     .values(resolved_at=now, replay_requested_at=None, attempts=q.c.attempts + 1))
    for sid, answer in refused.items():
        conn.execute(q.update().where(q.c.target_id == target_id, q.c.statement_id == sid).values(
            status=answer.status or 0, response=answer.body, replay_requested_at=None, attempts=q.c.attempts + 1))


class ForwardingRepository:
    """The targets and their quarantine inside one unit of work. A uniqueness the
    database enforces (a target's name) is reported as `Conflict`."""

    def __init__(self, conn: Connection, box: SecretBox):
        self.conn, self.box = conn, box

    def _sealed(self, values: dict) -> dict:
        return values | {"password": self.box.seal(values["password"])} if "password" in values else values

    def require_target(self, target_id: str) -> None:
        if self.conn.execute(sa.select(t.targets.c.id).where(t.targets.c.id == target_id)).first() is None:
            raise NotFound(f"no target {target_id}")

    def add_target(self, row: dict) -> None:
        with db.unique_or_conflict(f"a target named {row['name']!r} exists already", "name"):
            self.conn.execute(t.targets.insert().values(self._sealed(row)))

    def change_target(self, target_id: str, values: dict) -> None:
        """New settings, a new revision, and a stopped target started again."""
        with db.unique_or_conflict(f"a target named {values['name']!r} exists already", "name"):
            self.conn.execute(t.targets.update().where(t.targets.c.id == target_id)
                              .values(self._sealed(values) | {"revision": t.targets.c.revision + 1}))
        self.conn.execute(t.target_status.update().where(t.target_status.c.target_id == target_id)
                          .values(stopped=False))

    def delete_target(self, target_id: str) -> None:
        """The target with its offsets, status and quarantine."""
        for table in (t.target_offsets, t.target_status, t.quarantine):
            self.conn.execute(table.delete().where(table.c.target_id == target_id))
        self.conn.execute(t.targets.delete().where(t.targets.c.id == target_id))

    def request_replay(self, target_id: str, statement_ids: list[str] | None, at) -> int:
        """Mark the target's unresolved quarantined statements (all, or these) for replay."""
        q = t.quarantine
        where = [q.c.target_id == target_id, q.c.resolved_at.is_(None)]
        if statement_ids is None:
            return self.conn.execute(q.update().where(*where).values(replay_requested_at=at)).rowcount
        return sum(self.conn.execute(q.update().where(*where, q.c.statement_id.in_(chunk))
                                     .values(replay_requested_at=at)).rowcount
                   for chunk in db.chunks(sorted(set(statement_ids))))
