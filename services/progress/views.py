"""Queries over the progress read models. Counts are computed from the learner rows, so
they always agree with them."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.progress import tables as t
from services.progress.projections import ENROLLED, WITHDRAWN
from shared import db
from shared.errors import NotFound

_le = t.learner_enrolments

_counts = (
    sa.select(
        _le.c.cohort_id,
        sa.func.count().label("total"),
        sa.func.sum(sa.case((_le.c.status == ENROLLED, 1), else_=0)).label("enrolled"),
        sa.func.sum(sa.case((_le.c.status == WITHDRAWN, 1), else_=0)).label("withdrawn"),
    ).group_by(_le.c.cohort_id).subquery()
)


def _cohort_query() -> sa.Select:
    return (
        sa.select(t.cohorts, sa.func.coalesce(_counts.c.enrolled, 0).label("enrolled"),
                  sa.func.coalesce(_counts.c.withdrawn, 0).label("withdrawn"))
        .select_from(t.cohorts.outerjoin(_counts, _counts.c.cohort_id == t.cohorts.c.id))
    )


def cohorts(engine: Engine, args: dict) -> dict:
    query = _cohort_query()
    for name in ("programme_id", "agency", "province", "wave"):
        if args.get(name) is not None:
            query = query.where(t.cohorts.c[name] == args[name])
    page, size = args["page"], args["page_size"]
    with db.reading(engine) as conn:
        total = conn.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        rows = conn.execute(query.order_by(t.cohorts.c.wave, t.cohorts.c.name)
                            .limit(size).offset((page - 1) * size)).all()
    return {"items": [row._asdict() for row in rows], "page": page, "page_size": size, "total": total}


def cohort(engine: Engine, cohort_id: str) -> dict:
    with db.reading(engine) as conn:
        row = conn.execute(_cohort_query().where(t.cohorts.c.id == cohort_id)).first()
    if row is None:
        raise NotFound(f"no cohort {cohort_id} (yet: read models follow the event stream)")
    return row._asdict()


def learners(engine: Engine, cohort_id: str, args: dict) -> dict:
    cohort(engine, cohort_id)
    query = sa.select(_le).where(_le.c.cohort_id == cohort_id)
    if args.get("status"):
        query = query.where(_le.c.status == args["status"])
    page, size = args["page"], args["page_size"]
    with db.reading(engine) as conn:
        total = conn.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        rows = conn.execute(query.order_by(_le.c.enrolled_at, _le.c.registration)
                            .limit(size).offset((page - 1) * size)).all()
    return {"items": [row._asdict() for row in rows], "page": page, "page_size": size, "total": total}
