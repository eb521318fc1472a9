"""The read side of certification's API: listings, search, exports and verification."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.certification import tables as t
from services.certification.domain import IN_PROGRESS, LATE
from shared import db
from shared.errors import NotFound
from shared.vocabulary import REVOKED, VALID

c = t.certificates


def certificate_view(row, public_url: str) -> dict:
    item = row._asdict()
    for internal in ("actor", "programme_activity", "cohort_activity"):
        item.pop(internal, None)
    item["status"] = REVOKED if item["revoked_at"] else VALID
    item["verification_url"] = f"{public_url}/verify/{item['verification_code']}"
    return item


def _visible_cohorts(units: frozenset[str] | None):
    """The certificates (or enrolments, by `column`) of the cohorts of these units."""
    return sa.select(t.cohorts.c.id).where(db.in_units(t.cohorts.c.agency, t.cohorts.c.province, units))


def _of_units(column: sa.ColumnElement, units: frozenset[str] | None):
    return sa.true() if units is None else column.in_(_visible_cohorts(units))


def _filtered(args: dict, units: frozenset[str] | None = None) -> sa.Select:
    query = sa.select(c).where(_of_units(c.c.cohort_id, units))
    for name in ("programme_id", "programme_code", "cohort_id", "organisation"):
        if args.get(name) is not None:
            query = query.where(c.c[name] == args[name])
    if args.get("status") == VALID:
        query = query.where(c.c.revoked_at.is_(None))
    elif args.get("status") == REVOKED:
        query = query.where(c.c.revoked_at.is_not(None))
    if args.get("issued_from") is not None:
        query = query.where(c.c.issued_at >= args["issued_from"])
    if args.get("issued_to") is not None:
        query = query.where(c.c.issued_at < args["issued_to"])
    if args.get("q"):
        pattern = f"%{args['q'].lower()}%"
        query = query.where(sa.or_(sa.func.lower(c.c.learner_name).like(pattern),
                                   sa.func.lower(c.c.number).like(pattern)))
    return query


def certificates(engine: Engine, args: dict, public_url: str, units: frozenset[str] | None = None) -> dict:
    query = _filtered(args, units).order_by(c.c.issued_at, c.c.number)
    with db.reading(engine) as conn:
        return db.paged(conn, query, args, lambda row: certificate_view(row, public_url))


def certificate(engine: Engine, certificate_id: str, public_url: str, units: frozenset[str] | None = None) -> dict:
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(c).where(c.c.id == certificate_id, _of_units(c.c.cohort_id, units))).first()
    if row is None:
        raise NotFound(f"no certificate {certificate_id}")
    return certificate_view(row, public_url)


def require_cohort(engine: Engine, cohort_id: str, units: frozenset[str] | None = None) -> None:
    """An export of a cohort nobody defined, or of another unit's, is a 404, not an empty file."""
    with db.reading(engine) as conn:
        if units is not None:
            known = conn.scalar(sa.select(sa.literal(True)).where(
                sa.exists().where(t.cohorts.c.id == cohort_id, t.cohorts.c.id.in_(_visible_cohorts(units)))))
        else:
            known = conn.scalar(sa.select(sa.literal(True)).where(sa.or_(
                sa.exists().where(t.cohorts.c.id == cohort_id), sa.exists().where(c.c.cohort_id == cohort_id))))
    if not known:
        raise NotFound(f"no cohort {cohort_id}")


def cohort_certificates(engine: Engine, cohort_id: str, status: str, public_url: str, batch: int = 500):
    """Every certificate of a cohort, in number order, read in batches (exports stream)."""
    query = _filtered({"cohort_id": cohort_id, "status": None if status == "all" else status})
    last = ""
    while True:
        with db.reading(engine) as conn:
            rows = conn.execute(query.where(c.c.number > last).order_by(c.c.number).limit(batch)).all()
        if not rows:
            return
        yield from (certificate_view(row, public_url) for row in rows)
        last = rows[-1].number


def verification(engine: Engine, code: str) -> dict:
    """valid / revoked / unknown, and only what a verifier needs."""
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(c.c.number, c.c.learner_name, c.c.programme_title, c.c.issued_at,
                                     c.c.revoked_at).where(c.c.verification_code == code)).first()
    if row is None or row.number is None:
        return {"status": "unknown"}
    found = {"status": REVOKED if row.revoked_at else VALID, "number": row.number, "name": row.learner_name,
             "programme": row.programme_title, "issued_on": row.issued_at.date()}
    if row.revoked_at:
        found["revoked_on"] = row.revoked_at.date()
    return found


def standings(engine: Engine, args: dict, now: datetime, units: frozenset[str] | None = None) -> dict:
    """Each enrolment's standing now. The rule's decision (domain.decide) comes from the
    facts alone; the clock adds what no statement can say: a learner still in progress
    once the deadline plus the programme's grace has passed is late, as progress decides
    overdue at query time. One SQL expression lists, filters and counts by it."""
    e, r = t.learner_enrolments, t.programme_rules
    with db.reading(engine) as conn:
        graces = sorted({0, *conn.scalars(sa.select(r.c.grace_days).distinct())})
        # deadline + grace < now, written per grace value so that it is plain SQL everywhere.
        past = sa.or_(*[(sa.func.coalesce(r.c.grace_days, 0) == grace) & (e.c.deadline < now - timedelta(days=grace))
                        for grace in graces])
        standing = sa.case(((e.c.standing == IN_PROGRESS) & past, LATE), else_=e.c.standing)
        query = (sa.select(*[c for c in e.c if c.name != "standing"], standing.label("standing"))
                 .select_from(e.outerjoin(r, r.c.programme_id == e.c.programme_id)))
        query = query.where(_of_units(e.c.cohort_id, units))
        for name in ("programme_id", "cohort_id"):
            if args.get(name) is not None:
                query = query.where(e.c[name] == args[name])
        if args.get("standing") is not None:
            query = query.where(standing == args["standing"])
        return db.paged(conn, query.order_by(e.c.registration), args)


def rules(engine: Engine, programme_id: str) -> dict:
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(t.programme_rules).where(t.programme_rules.c.programme_id == programme_id)).first()
    if row is None:
        return {"programme_id": programme_id, "grace_days": 0, "updated_at": None, "updated_by": None}
    return row._asdict()
