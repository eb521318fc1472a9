"""Statements to read models. Handlers take a batch of statements of one event type and
must be idempotent: the runner already skips statement ids it has applied, and a
handler also tolerates facts arriving out of order across partitions (a cohort's own
statement may come after its first enrolment)."""
from __future__ import annotations

from sqlalchemy.engine import Connection

from services.progress import facts
from services.progress import tables as t
from services.progress.lrs.projection import AlsoStoredInLrs
from shared import db, xapi
from shared.config import Settings
from shared.consumer import Projection
from shared.events import EventType

ENROLLED = "enrolled"
WITHDRAWN = "withdrawn"


def _programme_row(activity: dict) -> dict:
    details = activity["definition"]["extensions"][xapi.EXT_PROGRAMME]
    return {"id": details["id"], "code": details["code"], "title": xapi.activity_name(activity) or details["code"],
            "activity_id": activity["id"], "required_modules": details["required_modules"],
            "final_test": details["final_test"], "window_days": details["window_days"]}


def _cohort_row(activity: dict) -> dict:
    details = activity["definition"]["extensions"][xapi.EXT_COHORT]
    return {"id": details["id"], "programme_id": details["programme_id"], "name": xapi.activity_name(activity),
            "agency": details["agency"], "province": details.get("province"), "wave": details["wave"],
            "accounts_issued_at": xapi.parse_timestamp(details["accounts_issued_at"]),
            "activity_id": activity["id"]}


def _latest_by_id(rows: list[dict]) -> list[dict]:
    return list({row["id"]: row for row in rows}.values())


def on_programme_defined(conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.programmes, _latest_by_id([_programme_row(s["object"]) for s in statements]), ["id"])


def on_cohort_defined(conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.cohorts, _latest_by_id([_cohort_row(s["object"]) for s in statements]), ["id"])


def _learner_row(stmt: dict, status: str) -> dict:
    cohort = xapi.context_activity(stmt, "grouping")
    ext = xapi.context_extensions(stmt)
    deadline = ext.get(xapi.EXT_DEADLINE)
    return {
        "registration": xapi.registration(stmt),
        "cohort_id": cohort["definition"]["extensions"][xapi.EXT_COHORT]["id"],
        "programme_id": stmt["object"]["definition"]["extensions"][xapi.EXT_PROGRAMME]["id"],
        "learner_key": xapi.learner_key(stmt["actor"]),
        "name": stmt["actor"].get("name"),
        "organisation": ext.get(xapi.EXT_ORGANISATION),
        "status": status,
        "enrolled_at": xapi.parse_timestamp(stmt["timestamp"]) if status == ENROLLED else None,
        "deadline": xapi.parse_timestamp(deadline) if deadline else None,
        "withdrawn_at": xapi.parse_timestamp(stmt["timestamp"]) if status == WITHDRAWN else None,
        "modules_required": len(stmt["object"]["definition"]["extensions"][xapi.EXT_PROGRAMME]["required_modules"]),
    }


def _cohorts_of(statements: list[dict]) -> list[dict]:
    return _latest_by_id([_cohort_row(xapi.context_activity(s, "grouping")) for s in statements])


def on_learner_enrolled(conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.cohorts, _cohorts_of(statements), ["id"])
    db.upsert(conn, t.programmes, _latest_by_id([_programme_row(s["object"]) for s in statements]), ["id"])
    # DO NOTHING on conflict: a withdrawal seen first must not be undone by its enrolment.
    rows = [_learner_row(s, ENROLLED) for s in statements]
    db.insert_ignoring_duplicates(conn, t.learner_enrolments, rows, ["registration"])
    # Facts that arrived before the enrolment count now (most learners have none yet).
    facts.refresh_learners(conn, facts.learners_with_facts(conn, {row["learner_key"] for row in rows}))


def on_learner_withdrew(conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.cohorts, _cohorts_of(statements), ["id"])
    rows = [_learner_row(s, WITHDRAWN) for s in statements]
    db.insert_ignoring_duplicates(conn, t.learner_enrolments, rows, ["registration"])
    for row in rows:
        conn.execute(t.learner_enrolments.update()
                     .where(t.learner_enrolments.c.registration == row["registration"])
                     .values(status=WITHDRAWN, withdrawn_at=row["withdrawn_at"]))


def on_learning_activity(conn: Connection, statements: list[dict]) -> None:
    """A player's or LMS's statement (via the LRS), or a final-test step: activity, and a
    verdict where the statement reports success."""
    touched = (facts.record_voids(conn, statements) | facts.record_activity(conn, statements)
               | facts.record_outcomes(conn, statements))
    facts.refresh_learners(conn, touched)


def on_certificate_earned(conn: Connection, statements: list[dict]) -> None:
    facts.refresh_learners(conn, facts.record_certificates(conn, statements, "valid"))


def on_certificate_revoked(conn: Connection, statements: list[dict]) -> None:
    facts.refresh_learners(conn, facts.record_certificates(conn, statements, "revoked"))


# Every event this service projects, in one place.
HANDLERS = {
    EventType.PROGRAMME_DEFINED: on_programme_defined,
    EventType.COHORT_DEFINED: on_cohort_defined,
    EventType.LEARNER_ENROLLED: on_learner_enrolled,
    EventType.LEARNER_WITHDREW: on_learner_withdrew,
    EventType.LRS_STATEMENT: on_learning_activity,
    EventType.ATTEMPT_STARTED: on_learning_activity,
    EventType.ATTEMPT_SCORED: on_learning_activity,
    EventType.ATTEMPT_PASSED: on_learning_activity,
    EventType.ATTEMPT_FAILED: on_learning_activity,
    EventType.CERTIFICATE_EARNED: on_certificate_earned,
    EventType.CERTIFICATE_REVOKED: on_certificate_revoked,
}

READ_MODELS = [t.programmes, t.cohorts, t.learner_enrolments, t.learner_statements, t.voided_statements,
               t.learner_activity_days, t.final_test_outcomes, t.learner_certificates]


def projection(settings: Settings) -> Projection:
    # Every statement on these topics is also stored in the LRS (issue 3), whatever its type.
    topics = [settings.topic("enrollment"), settings.topic("lrs"), settings.topic("assessment"),
              settings.topic("certification")]
    return Projection(topics=topics, handlers=AlsoStoredInLrs(HANDLERS), tables=READ_MODELS)
