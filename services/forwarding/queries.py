"""The read side of the forwarding API: targets (never their passwords), status, quarantine."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.forwarding import tables as t
from shared import db
from shared.errors import NotFound

_SHOWN = [c for c in t.targets.c if c.name != "password"]


def _quarantined_counts(conn) -> dict[str, int]:
    q = t.quarantine
    return dict(conn.execute(sa.select(q.c.target_id, sa.func.count()).where(q.c.resolved_at.is_(None))
                             .group_by(q.c.target_id)).all())


def _lags(conn) -> dict[str, int]:
    o = t.target_offsets
    behind = sa.case((o.c.end_offset > o.c.next_offset, o.c.end_offset - o.c.next_offset), else_=0)
    return {target_id: int(lag or 0) for target_id, lag in conn.execute(
        sa.select(o.c.target_id, sa.func.sum(behind)).group_by(o.c.target_id))}


def _view(row, status, quarantined: int, lag: int) -> dict:
    item = {c.name: getattr(row, c.name) for c in _SHOWN}
    item["has_password"] = bool(row.has_password)
    item["status"] = None if status is None else status._asdict() | {"quarantined": quarantined, "lag": lag}
    return item


def _query():
    return (sa.select(*_SHOWN, (t.targets.c.password != "").label("has_password"))
            .order_by(t.targets.c.name))


def targets(engine: Engine, args: dict) -> dict:
    with db.reading(engine) as conn:
        statuses = {row.target_id: row for row in conn.execute(sa.select(t.target_status))}
        counts, lags = _quarantined_counts(conn), _lags(conn)
        return db.paged(conn, _query(), args,
                        lambda row: _view(row, statuses.get(row.id), counts.get(row.id, 0), lags.get(row.id, 0)))


def target(engine: Engine, target_id: str) -> dict:
    with db.reading(engine) as conn:
        row = conn.execute(_query().where(t.targets.c.id == target_id)).first()
        if row is None:
            raise NotFound(f"no target {target_id}")
        status = conn.execute(sa.select(t.target_status).where(t.target_status.c.target_id == target_id)).first()
        return _view(row, status, _quarantined_counts(conn).get(target_id, 0), _lags(conn).get(target_id, 0))


def quarantine(engine: Engine, target_id: str, args: dict) -> dict:
    q = t.quarantine
    target(engine, target_id)
    query = sa.select(q).where(q.c.target_id == target_id,
                               q.c.resolved_at.is_not(None) if args["resolved"] else q.c.resolved_at.is_(None))
    with db.reading(engine) as conn:
        return db.paged(conn, query.order_by(q.c.topic, q.c.partition, q.c.offset), args)


def lag_page(engine: Engine) -> list[dict]:
    """Every target with its status, for the HTML page."""
    return targets(engine, {"page": 1, "page_size": 1000})["items"]
