"""Loading and storing enrollment's domain objects (the only module that maps rows).

`EnrollmentRepository` is what the commands see through their unit of work; the
`*_from_row` functions also serve the read queries (queries.py)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.enrollment import tables as t
from services.enrollment.domain import Cohort, Enrolment, Learner, Programme
from shared import account_tables, db
from shared.accounts import Account
from shared.errors import NotFound

# Enrollment learns an import from learnstream.content.v1 within a second or so of it.
COURSE_UNKNOWN = ("no cmi5 course {} is known here: import it on the progress service first "
                  "(enrollment learns it from the bus within seconds)")


def programme_from_row(row) -> Programme:
    return Programme(id=row.id, code=row.code, title=row.title, required_modules=tuple(row.required_modules),
                     final_test=row.final_test, window_days=row.window_days, activity_id=row.activity_id,
                     cmi5_course=row.cmi5_course)


def cohort_from_row(row) -> Cohort:
    return Cohort(id=row.id, programme_id=row.programme_id, name=row.name, agency=row.agency,
                  province=row.province, wave=row.wave, accounts_issued_at=row.accounts_issued_at,
                  activity_id=row.activity_id)


def enrolment_from_row(row) -> Enrolment:
    learner = Learner(name=row.name, organisation=row.organisation, email=row.email,
                      account_home_page=row.account_home_page, account_name=row.account_name)
    return Enrolment(id=row.id, programme_id=row.programme_id, cohort_id=row.cohort_id, learner=learner,
                     enrolled_at=row.enrolled_at, deadline=row.deadline, status=row.status,
                     withdrawn_at=row.withdrawn_at, withdrawal_reason=row.withdrawal_reason)


def enrolment_row(enrolment: Enrolment) -> dict:
    learner = enrolment.learner
    return {
        "id": enrolment.id, "programme_id": enrolment.programme_id, "cohort_id": enrolment.cohort_id,
        "learner_key": learner.key, "name": learner.name, "email": learner.email,
        "account_home_page": learner.account_home_page, "account_name": learner.account_name,
        "organisation": learner.organisation, "status": enrolment.status, "enrolled_at": enrolment.enrolled_at,
        "deadline": enrolment.deadline, "withdrawn_at": enrolment.withdrawn_at,
        "withdrawal_reason": enrolment.withdrawal_reason,
    }


def get_programme(conn: Connection, programme_id: str) -> Programme:
    row = conn.execute(sa.select(t.programmes).where(t.programmes.c.id == programme_id)).first()
    if row is None:
        raise NotFound(f"no programme {programme_id}", "programme_id")
    return programme_from_row(row)


def get_cohort(conn: Connection, cohort_id: str) -> Cohort:
    row = conn.execute(sa.select(t.cohorts).where(t.cohorts.c.id == cohort_id)).first()
    if row is None:
        raise NotFound(f"no cohort {cohort_id}", "cohort_id")
    return cohort_from_row(row)


def get_enrolment(conn: Connection, enrolment_id: str) -> Enrolment:
    row = conn.execute(sa.select(t.enrolments).where(t.enrolments.c.id == enrolment_id)).first()
    if row is None:
        raise NotFound(f"no enrolment {enrolment_id}")
    return enrolment_from_row(row)


def enrolled_learner_keys(conn: Connection, programme_id: str, keys: list[str]) -> dict[str, str]:
    """Which of these learners already hold an enrolment in the programme (key -> enrolment id)."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        found.update(dict(conn.execute(
            sa.select(t.enrolments.c.learner_key, t.enrolments.c.id)
            .where(t.enrolments.c.programme_id == programme_id, t.enrolments.c.learner_key.in_(chunk))
        ).all()))
    return found


class EnrollmentRepository:
    """Enrollment's state inside one unit of work: reads and writes over its connection.

    A uniqueness the database enforces (a programme code, a cohort name within its
    programme) is reported as `Conflict`, so a command reads the same with this
    repository as with the in-memory one of the unit tests."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def get_programme(self, programme_id: str) -> Programme:
        return get_programme(self.conn, programme_id)

    def get_cohort(self, cohort_id: str) -> Cohort:
        return get_cohort(self.conn, cohort_id)

    def get_enrolment(self, enrolment_id: str) -> Enrolment:
        return get_enrolment(self.conn, enrolment_id)

    def enrolled_learner_keys(self, programme_id: str, keys: list[str]) -> dict[str, str]:
        return enrolled_learner_keys(self.conn, programme_id, keys)

    def add_programme(self, programme: Programme, created_at) -> None:
        with _unique(f"a programme with code {programme.code!r} exists", "code"):
            self.conn.execute(t.programmes.insert().values(
                id=programme.id, code=programme.code, title=programme.title,
                required_modules=list(programme.required_modules), final_test=programme.final_test,
                window_days=programme.window_days, activity_id=programme.activity_id,
                cmi5_course=programme.cmi5_course, created_at=created_at))

    def save_programme(self, programme: Programme) -> None:
        self.conn.execute(t.programmes.update().where(t.programmes.c.id == programme.id).values(
            required_modules=list(programme.required_modules), cmi5_course=programme.cmi5_course))

    def has_enrolments(self, programme_id: str) -> bool:
        return self.conn.scalar(sa.select(sa.literal(True)).where(
            sa.exists().where(t.enrolments.c.programme_id == programme_id))) is not None

    def course_modules(self, course_id: str) -> tuple[str, ...]:
        """The required modules of an imported cmi5 course, as enrollment has learnt it."""
        modules = self.conn.scalar(sa.select(t.courses.c.required_modules).where(
            t.courses.c.id == course_id, t.courses.c.removed_at.is_(None)))
        if modules is None:
            raise NotFound(COURSE_UNKNOWN.format(course_id), "cmi5_course")
        return tuple(modules)

    def add_cohort(self, cohort: Cohort, created_at) -> None:
        with _unique(f"the programme already has a cohort named {cohort.name!r}", "name"):
            self.conn.execute(t.cohorts.insert().values(
                id=cohort.id, programme_id=cohort.programme_id, name=cohort.name, agency=cohort.agency,
                province=cohort.province, wave=cohort.wave, accounts_issued_at=cohort.accounts_issued_at,
                activity_id=cohort.activity_id, created_at=created_at))

    def add_enrolments(self, enrolments: list[Enrolment]) -> set[str]:
        """Insert those not enrolled meanwhile; the ids really inserted. ON CONFLICT DO
        NOTHING: a concurrent import of the same learners wins or loses row by row."""
        if not enrolments:
            return set()
        return set(db.insert_returning_new_ids(self.conn, t.enrolments, [enrolment_row(e) for e in enrolments],
                                               keys=["programme_id", "learner_key"]))

    def save_withdrawal(self, enrolment: Enrolment) -> bool:
        """Store a withdrawal unless a concurrent one got there first (then False)."""
        e = t.enrolments
        return self.conn.execute(
            e.update().where(e.c.id == enrolment.id, e.c.status != enrolment.status)
            .values(status=enrolment.status, withdrawn_at=enrolment.withdrawn_at,
                    withdrawal_reason=enrolment.withdrawal_reason)).rowcount == 1


_unique = db.unique_or_conflict


class AccountRepository:
    """The accounts (shared.accounts), enrollment's own state (shared.account_tables)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, key: str) -> Account:
        row = self.conn.execute(sa.select(t.accounts).where(t.accounts.c.key == key)).first()
        if row is None:
            raise NotFound("no such account", "key")
        return account_tables.account_of(row)

    def exists(self, key: str) -> bool:
        return self.conn.execute(sa.select(t.accounts.c.key).where(t.accounts.c.key == key)).first() is not None

    def save(self, account: Account) -> None:
        db.upsert(self.conn, t.accounts, [account_tables.row_of(account)], ["key"])
