"""Queries over the progress read models.

Counts are always computed from the per-learner rows (never kept as counters), so they
agree with them by construction; "overdue" is decided against the clock at query time.
An operator limited to organisation units sees only their cohorts.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.progress import domain
from services.progress import tables as t
from services.progress.cmi5 import lms
from shared import db
from shared.csv_export import csv_text
from shared.errors import NotFound
from shared.vocabulary import ENROLLED, VALID, WITHDRAWN

_le = t.learner_enrolments
_c = t.cohorts

COUNTS = ("enrolled", "withdrawn", "started", "modules_completed", "passed", "failed", "certified", "overdue")

# Learner states an operator filters the learner table by.
STATES = ("not_started", "in_progress", "modules_completed", "passed", "failed", "certified", "overdue", "withdrawn")

SORTS = {
    # Vietnamese order (given name first; shared.name_order), from the key kept per row.
    "name": _le.c.name_key, "organisation": _le.c.organisation, "progress": _le.c.modules_completed,
    "last_activity": _le.c.last_activity_at, "deadline": _le.c.deadline, "enrolled_at": _le.c.enrolled_at,
    "score": _le.c.final_test_best_score,
}


# A withdrawn learner counts as withdrawn and nowhere else: every other figure (counts,
# rates, states, the series) is about the learners still enrolled (README, progress).
_ACTIVE = _le.c.status == ENROLLED


def _conditions(now: datetime) -> dict[str, sa.ColumnElement]:
    active = _ACTIVE
    return {
        "enrolled": active,
        "withdrawn": _le.c.status == WITHDRAWN,
        "started": active & _le.c.first_activity_at.is_not(None),
        "not_started": active & _le.c.first_activity_at.is_(None),
        "in_progress": active & _le.c.first_activity_at.is_not(None) & _le.c.modules_completed_at.is_(None),
        "modules_completed": active & _le.c.modules_completed_at.is_not(None),
        "passed": active & (_le.c.final_test_status == domain.PASSED),
        "failed": active & (_le.c.final_test_status == domain.FAILED),
        "certified": active & (_le.c.certificate_status == VALID),
        # Mirrors domain.is_overdue, which decides the same per row.
        "overdue": active & (_le.c.deadline < now) & _le.c.finished_at.is_(None),
    }


def _count_columns(now: datetime) -> list:
    conditions = _conditions(now)
    return [sa.func.coalesce(sa.func.sum(sa.case((conditions[name], 1), else_=0)), 0).label(name)
            for name in COUNTS]


def _with_rates(row: dict) -> dict:
    enrolled = row["enrolled"] or 0
    row["rates"] = {name: round(row[name] / enrolled, 4) if enrolled else 0.0
                    for name in COUNTS if name not in ("enrolled", "withdrawn")}
    return row


def _visible(query: sa.Select, units: frozenset[str] | None) -> sa.Select:
    """Only the cohorts of these units (agencies or provinces); None: every cohort."""
    return query.where(db.in_units(_c.c.agency, _c.c.province, units))


def cohorts(engine: Engine, args: dict, now: datetime, units: frozenset[str] | None) -> dict:
    query = _visible(
        sa.select(_c, *_count_columns(now)).select_from(_c.outerjoin(_le, _le.c.cohort_id == _c.c.id))
        .group_by(*_c.c), units)
    for name in ("programme_id", "agency", "province", "wave"):
        if args.get(name) is not None:
            query = query.where(_c.c[name] == args[name])
    with db.reading(engine) as conn:
        return db.paged(conn, query.order_by(_c.c.wave, _c.c.name), args, lambda row: _with_rates(_cohort_row(row)))


def _cohort_row(row) -> dict:
    item = row._asdict()
    for name in COUNTS:
        item[name] = int(item[name] or 0)
    return item


def cohort(engine: Engine, cohort_id: str, now: datetime, units: frozenset[str] | None) -> dict:
    query = _visible(sa.select(_c, *_count_columns(now))
                     .select_from(_c.outerjoin(_le, _le.c.cohort_id == _c.c.id))
                     .where(_c.c.id == cohort_id).group_by(*_c.c), units)
    with db.reading(engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no cohort {cohort_id} (read models follow the event stream)")
    return _with_rates(_cohort_row(row))


ROLLUPS = {"agency": _c.c.agency, "province": _c.c.province, "programme": _c.c.programme_id}


def rollup(engine: Engine, by: str, now: datetime, units: frozenset[str] | None) -> list[dict]:
    """The cohort counts summed per organisation unit, province or programme."""
    group = ROLLUPS[by]
    query = _visible(sa.select(group.label("key"), sa.func.count(sa.distinct(_c.c.id)).label("cohorts"),
                               *_count_columns(now))
                     .select_from(_c.outerjoin(_le, _le.c.cohort_id == _c.c.id)).group_by(group), units)
    with db.reading(engine) as conn:
        rows = conn.execute(query.order_by(group)).all()
    return [_with_rates(_cohort_row(row)) for row in rows]


def campaign(engine: Engine, now: datetime, units: frozenset[str] | None) -> dict:
    query = _visible(sa.select(sa.func.count(sa.distinct(_c.c.id)).label("cohorts"), *_count_columns(now))
                     .select_from(_c.outerjoin(_le, _le.c.cohort_id == _c.c.id)), units)
    with db.reading(engine) as conn:
        row = conn.execute(query).one()
    return _with_rates(_cohort_row(row))


def _learner_query(cohort_id: str, args: dict, now: datetime) -> sa.Select:
    query = sa.select(_le).where(_le.c.cohort_id == cohort_id)
    if args.get("state"):
        query = query.where(_conditions(now)[args["state"]])
    if args.get("organisation"):
        query = query.where(_le.c.organisation == args["organisation"])
    if args.get("q"):
        query = query.where(_le.c.name.ilike(f"%{args['q']}%"))
    column = SORTS[args.get("sort") or "name"]
    ordered = column.desc() if args.get("order") == "desc" else column.asc()
    return query.order_by(ordered, _le.c.registration)


def learner_view(row, now: datetime) -> dict:
    item = row._asdict()
    item.pop("name_key", None)  # the order's bytes, not for readers
    item["percent"] = domain.percent(item["modules_completed"], item["modules_required"])
    item["overdue"] = domain.is_overdue(item["status"], item["deadline"], item["finished_at"], now)
    return item


def learners(engine: Engine, cohort_id: str, args: dict, now: datetime, units: frozenset[str] | None) -> dict:
    """A page of the cohort's learners. For a programme delivered by a cmi5 course, the
    page also has the `course` (its AUs) and each learner `au_states`, one per AU."""
    found = cohort(engine, cohort_id, now, units)
    with db.reading(engine) as conn:
        page = db.paged(conn, _learner_query(cohort_id, args, now), args, lambda row: learner_view(row, now))
        course = conn.scalar(sa.select(t.programmes.c.cmi5_course).where(t.programmes.c.id == found["programme_id"]))
        if course is not None:
            _with_au_states(conn, course, page)
    return page


def _with_au_states(conn, course: str, page: dict) -> None:
    found = lms.au_states(conn, course, [item["registration"] for item in page["items"]])
    if found is None:  # the course was removed: the programme's counts stand, its AUs are gone
        return
    page["course"] = found["course"]
    for item in page["items"]:
        item["au_states"] = found["states"][item["registration"]]


CSV_COLUMNS = ("name", "organisation", "status", "state", "modules_completed", "modules_required", "percent",
               "final_test_status", "final_test_best_score", "certificate_number", "deadline", "overdue",
               "last_activity_at", "registration")


def _state(item: dict) -> str:
    if item["status"] == WITHDRAWN:
        return "withdrawn"
    if item["certificate_status"] == VALID:
        return "certified"
    if item["overdue"]:
        return "overdue"
    if item["final_test_status"] in (domain.PASSED, domain.FAILED):
        return item["final_test_status"]
    if item["modules_completed_at"]:
        return "modules_completed"
    return "in_progress" if item["first_activity_at"] else "not_started"


def learners_csv(engine: Engine, cohort_id: str, args: dict, now: datetime, units: frozenset[str] | None,
                 headers: list[str] | None = None) -> str:
    """The list agencies send to staff who have not finished: every learner, no paging.
    `headers`: the header row in the reader's language (shared.i18n.csv_headers)."""
    cohort(engine, cohort_id, now, units)
    with db.reading(engine) as conn:
        rows = conn.execute(_learner_query(cohort_id, args, now)).all()
    return csv_text(CSV_COLUMNS, (_csv_item(row, now) for row in rows), headers)


def _csv_item(row, now: datetime) -> dict:
    item = learner_view(row, now)
    item["state"] = _state(item)
    for key in ("deadline", "last_activity_at"):
        item[key] = item[key].isoformat().replace("+00:00", "Z") if item[key] else ""
    return item


def series(engine: Engine, cohort_id: str, now: datetime, units: frozenset[str] | None) -> list[dict]:
    """Per day over the cohort's window, from the accounts' issue to the later of its
    deadline and today (and of any fact after both): enrolled, active (learners with any
    activity that day), completed (all modules), certified. Learners still enrolled only."""
    found = cohort(engine, cohort_id, now, units)
    enrolled = sa.select(_le.c.learner_key).where(_le.c.cohort_id == cohort_id, _ACTIVE)
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(_le.c.enrolled_at, _le.c.modules_completed_at, _le.c.certified_at,
                                      _le.c.deadline).where(_le.c.cohort_id == cohort_id, _ACTIVE)).all()
        active = Counter(day for (day,) in conn.execute(
            sa.select(t.learner_activity_days.c.day).where(t.learner_activity_days.c.learner_key.in_(enrolled))))
        window_days = conn.scalar(sa.select(t.programmes.c.window_days)
                                  .where(t.programmes.c.id == found["programme_id"]))
    counts = {name: Counter(getattr(row, column).date() for row in rows if getattr(row, column))
              for name, column in (("enrolled", "enrolled_at"), ("completed", "modules_completed_at"),
                                   ("certified", "certified_at"))}
    days = [d for c in counts.values() for d in c] + list(active)
    issued = found["accounts_issued_at"].date()
    deadlines = [row.deadline.date() for row in rows if row.deadline]
    if window_days is not None:
        deadlines.append(issued + timedelta(days=window_days))
    start = min([issued, *days])
    end = max([now.date(), *deadlines, *days])
    end = min(end, start + timedelta(days=366))
    return [{"day": day.isoformat(), "enrolled": counts["enrolled"][day], "active": active[day],
             "completed": counts["completed"][day], "certified": counts["certified"][day]}
            for day in _days(start, end)]


def _days(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def cohort_of_registration(engine: Engine, registration: str) -> str | None:
    """The cohort of the enrolment with this registration; None if progress knows none."""
    with db.reading(engine) as conn:
        return conn.scalar(sa.select(t.learner_enrolments.c.cohort_id)
                           .where(t.learner_enrolments.c.registration == registration))
