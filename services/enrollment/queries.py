"""The read side of enrollment's own API: listings with filters and paging."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.enrollment import repository
from services.enrollment import tables as t
from shared import account_tables, db
from shared.errors import NotFound


def _page(engine: Engine, query: sa.Select, args: dict, to_item) -> dict:
    with db.reading(engine) as conn:
        return db.paged(conn, query, args, to_item)


def _filtered(table: sa.Table, args: dict, names: tuple[str, ...]) -> sa.Select:
    query = sa.select(table)
    for name in names:
        if args.get(name) is not None:
            query = query.where(table.c[name] == args[name])
    return query


def programmes(engine: Engine, args: dict) -> dict:
    query = _filtered(t.programmes, args, ("code",)).order_by(t.programmes.c.created_at, t.programmes.c.id)
    return _page(engine, query, args, lambda row: row._asdict())


def programme(engine: Engine, programme_id: str) -> dict:
    with db.reading(engine) as conn:
        found = repository.get_programme(conn, programme_id)
        return conn.execute(sa.select(t.programmes).where(t.programmes.c.id == found.id)).one()._asdict()


def _in_units(units: frozenset[str] | None):
    """Cohorts of these units (agencies or provinces); None: every cohort."""
    return db.in_units(t.cohorts.c.agency, t.cohorts.c.province, units)


def _cohort_in_units(units: frozenset[str] | None):
    return sa.true() if units is None else t.enrolments.c.cohort_id.in_(
        sa.select(t.cohorts.c.id).where(_in_units(units)))


def cohorts(engine: Engine, args: dict, units: frozenset[str] | None = None) -> dict:
    query = (_filtered(t.cohorts, args, ("programme_id", "agency", "province", "wave")).where(_in_units(units))
             .order_by(t.cohorts.c.created_at, t.cohorts.c.id))
    return _page(engine, query, args, lambda row: row._asdict())


def cohort(engine: Engine, cohort_id: str, units: frozenset[str] | None = None) -> dict:
    with db.reading(engine) as conn:
        repository.get_cohort(conn, cohort_id)
        row = conn.execute(sa.select(t.cohorts).where(t.cohorts.c.id == cohort_id, _in_units(units))).first()
    if row is None:  # another unit's: as if it did not exist
        raise NotFound(f"no cohort {cohort_id}", "cohort_id")
    return row._asdict()


def enrolment_view(row) -> dict:
    item = row._asdict()
    item["learner"] = {k: item.pop(k) for k in ("name", "email", "account_home_page", "account_name", "organisation")}
    return item


def enrolments(engine: Engine, args: dict, units: frozenset[str] | None = None) -> dict:
    query = (_filtered(t.enrolments, args, ("programme_id", "cohort_id", "status", "organisation"))
             .where(_cohort_in_units(units)).order_by(t.enrolments.c.enrolled_at, t.enrolments.c.id))
    return _page(engine, query, args, enrolment_view)


def enrolment(engine: Engine, enrolment_id: str, units: frozenset[str] | None = None) -> dict:
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(t.enrolments).where(t.enrolments.c.id == enrolment_id,
                                                         _cohort_in_units(units))).first()
    if row is None:
        raise NotFound(f"no enrolment {enrolment_id}")
    return enrolment_view(row)


def accounts(engine: Engine, args: dict) -> dict:
    query = _filtered(t.accounts, args, ("role",)).order_by(t.accounts.c.key)
    if args.get("disabled") is not None:
        query = query.where(t.accounts.c.disabled == args["disabled"])
    return _page(engine, query, args, lambda row: account_tables.account_of(row).as_public())


def account(engine: Engine, key: str) -> dict:
    with db.reading(engine) as conn:
        return repository.AccountRepository(conn).get(key).as_public()
