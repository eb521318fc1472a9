"""Loading targets as domain objects, and the forwarder's writes (offsets are in forwarder.py)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.forwarding import tables as t
from services.forwarding.domain import Filter, Target
from shared import db, xapi


def target_from_row(row) -> Target:
    return Target(id=row.id, name=row.name, url=row.url, xapi_version=row.xapi_version, username=row.username,
                  password=row.password, filter=Filter.of(row.filter), enabled=row.enabled,
                  batch_size=row.batch_size, timeout_seconds=row.timeout_seconds, revision=row.revision)


def targets(conn: Connection) -> list[Target]:
    return [target_from_row(row) for row in conn.execute(sa.select(t.targets).order_by(t.targets.c.name))]


def _status_row(target_id: str) -> dict:
    return {"target_id": target_id, "lag": 0, "delivered": 0, "last_delivered_at": None, "retrying": False,
            "stopped": False, "last_error": None, "updated_at": xapi.utc_now()}


def write_status(conn: Connection, target_id: str, *, retrying: bool, last_error: str | None,
                 delivered: int = 0, stopped: bool = False) -> None:
    s = t.target_status
    db.insert_ignoring_duplicates(conn, s, [_status_row(target_id)], ["target_id"])
    values = {"retrying": retrying, "last_error": last_error, "stopped": stopped, "updated_at": xapi.utc_now()}
    if delivered:
        values |= {"delivered": s.c.delivered + delivered, "last_delivered_at": xapi.utc_now()}
    conn.execute(s.update().where(s.c.target_id == target_id).values(values))


def write_lag(conn: Connection, target_id: str, lag: int) -> None:
    s = t.target_status
    db.insert_ignoring_duplicates(conn, s, [_status_row(target_id)], ["target_id"])
    conn.execute(s.update().where(s.c.target_id == target_id).values(lag=lag, updated_at=xapi.utc_now()))


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
