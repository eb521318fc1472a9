"""Queries over the assessment read models, and how attempts are shown."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.assessment import repository as repo
from services.assessment import tables as t
from services.assessment.domain import RESULT_STATUSES, Attempt
from shared import db
from shared.errors import NotFound
from shared.schemas import MAX_DB_INT
from shared.vocabulary import ENROLLED, WITHDRAWN

_r = t.learner_results


def attempt_view(attempt: Attempt) -> dict:
    score = attempt.score
    return {
        "id": attempt.id, "registration": attempt.registration, "programme_id": attempt.programme_id,
        "number": attempt.number, "status": attempt.status, "bank_version": attempt.bank_version,
        "started_at": attempt.started_at, "expires_at": attempt.expires_at, "finished_at": attempt.finished_at,
        "questions": [q.public() for q in attempt.questions],
        "answers": {qid: sorted(chosen) for qid, chosen in attempt.answers.items()},
        "pass_mark": attempt.pass_mark, "score": score.scaled if score else None,
        "raw_score": score.raw if score else None, "success": attempt.success,
        "credits": score.credits if score else None,
    }


def _of_units(units: frozenset[str] | None):
    """Results of enrolments in cohorts of these units (an agency operator's); None: all."""
    e = t.known_enrolments
    return sa.true() if units is None else _r.c.registration.in_(
        sa.select(e.c.registration).where(db.in_units(e.c.agency, e.c.province, units)))


def learner_result(engine: Engine, registration: str, units: frozenset[str] | None = None) -> dict:
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(_r).where(_r.c.registration == registration, _of_units(units))).first()
        if row is None:
            raise NotFound(f"no enrolment {registration} is known here (yet: read models follow the event stream)")
        e, log = t.known_enrolments, t.attempt_log
        enrolment = conn.execute(sa.select(e.c.learner_key, e.c.final_test)
                                 .where(e.c.registration == registration)).one()
        attempts = conn.execute(sa.select(log).where(sa.or_(
            sa.and_(log.c.source == repo.OWN, log.c.registration == registration),
            sa.and_(log.c.source == repo.LRS, log.c.learner_key == enrolment.learner_key,
                    log.c.activity_id == enrolment.final_test)))
            .order_by(sa.func.coalesce(log.c.started_at, log.c.finished_at), log.c.attempt_id)).all()
    return row._asdict() | {"attempts": [a._asdict() for a in attempts]}


def results(engine: Engine, scope: str, scope_id: str, args: dict, units: frozenset[str] | None = None) -> dict:
    """A cohort's or programme's learners and their standing, with counts per status.

    Withdrawn learners count as withdrawn and nowhere else, as in every view of every
    service (README, Progress): the status counts and the `status` filter are about the
    learners still enrolled; `status=withdrawn` lists the others."""
    column = _r.c.cohort_id if scope == "cohort" else _r.c.programme_id
    enrolled = _r.c.enrolment_status == ENROLLED
    query = sa.select(_r).where(column == scope_id, _of_units(units))
    if args.get("status") == WITHDRAWN:
        query = query.where(_r.c.enrolment_status == WITHDRAWN)
    elif args.get("status"):
        query = query.where(_r.c.status == args["status"], enrolled)
    with db.reading(engine) as conn:
        counted: dict[str, int] = {}
        for enrolment_status, status, n in conn.execute(
                sa.select(_r.c.enrolment_status, _r.c.status, sa.func.count()).where(column == scope_id,
                                                                                     _of_units(units))
                .group_by(_r.c.enrolment_status, _r.c.status)):
            key = status if enrolment_status == ENROLLED else WITHDRAWN
            counted[key] = counted.get(key, 0) + n
        listing = db.paged(conn, query.order_by(_r.c.registration), args)
    return listing | {"counts": {status: counted.get(status, 0) for status in (*RESULT_STATUSES, WITHDRAWN)}}


def latest_bank(engine: Engine, programme_id: str) -> dict:
    with db.reading(engine) as conn:
        row = repo.latest_bank(conn, programme_id)
    if row is None:
        raise NotFound(f"programme {programme_id} has no question bank")
    return row._asdict()


def bank_version(engine: Engine, programme_id: str, version: int) -> dict:
    if version > MAX_DB_INT:  # no such version, and too large to look for in the database
        raise NotFound(f"programme {programme_id} has no question bank version {version}", "version")
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(t.question_banks).where(t.question_banks.c.programme_id == programme_id,
                                                              t.question_banks.c.version == version)).first()
    if row is None:
        raise NotFound(f"programme {programme_id} has no question bank version {version}", "version")
    return row._asdict()


def final_test(engine: Engine, programme_id: str) -> dict:
    with db.reading(engine) as conn:
        row = repo.final_test_row(conn, programme_id)
    if row is None:
        raise NotFound(f"programme {programme_id} has no final test defined")
    return row._asdict()


def cohort_of_registration(engine: Engine, registration: str) -> str | None:
    """The cohort of an enrolment, as enrollment told it (None: not known)."""
    with db.reading(engine) as conn:
        return conn.execute(sa.select(t.known_enrolments.c.cohort_id)
                            .where(t.known_enrolments.c.registration == registration)).scalar()


def cohort_of_attempt(engine: Engine, attempt_id: str) -> str | None:
    with db.reading(engine) as conn:
        enrolment = t.known_enrolments
        joined = t.attempts.join(enrolment, enrolment.c.registration == t.attempts.c.registration)
        return conn.execute(sa.select(enrolment.c.cohort_id).select_from(joined)
                            .where(t.attempts.c.id == attempt_id)).scalar()
