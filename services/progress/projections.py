"""Statements to read models. Handlers take a batch of statements of one event type and
must be idempotent: the runner already skips statement ids it has applied, and a
handler also tolerates facts arriving out of order across partitions (a cohort's own
statement may come after its first enrolment)."""
from __future__ import annotations

from sqlalchemy.engine import Connection

from services.progress import facts
from services.progress import tables as t
from services.progress.lrs.projection import AlsoStoredInLrs
from shared import catalog, db
from shared.account_tables import handlers as account_handlers
from shared.config import Settings
from shared.consumer import Projection
from shared.events import EventType
from shared.name_order import sort_key
from shared.vocabulary import ENROLLED, REVOKED, VALID, WITHDRAWN


def _programme_row(programme: catalog.Programme) -> dict:
    return {"id": programme.id, "code": programme.code, "title": programme.title,
            "activity_id": programme.activity["id"], "required_modules": list(programme.required_modules),
            "final_test": programme.final_test, "window_days": programme.window_days,
            "cmi5_course": programme.cmi5_course}


def _cohort_row(cohort: catalog.Cohort) -> dict:
    return {"id": cohort.id, "programme_id": cohort.programme_id, "name": cohort.name, "agency": cohort.agency,
            "province": cohort.province, "wave": cohort.wave, "accounts_issued_at": cohort.accounts_issued_at,
            "activity_id": cohort.activity["id"]}


def on_programme_defined(conn: Connection, statements: list[dict]) -> None:
    rows = [_programme_row(catalog.programme(s["object"])) for s in statements]
    db.upsert(conn, t.programmes, catalog.latest_by_id(rows), ["id"])


def on_cohort_defined(conn: Connection, statements: list[dict]) -> None:
    rows = [_cohort_row(catalog.cohort(s["object"])) for s in statements]
    db.upsert(conn, t.cohorts, catalog.latest_by_id(rows), ["id"])


def _learner_row(enrolment: catalog.Enrolment, status: str) -> dict:
    return {
        "registration": enrolment.registration, "cohort_id": enrolment.cohort.id,
        "programme_id": enrolment.programme.id, "learner_key": enrolment.learner_key, "name": enrolment.name,
        "name_key": sort_key(enrolment.name),
        "organisation": enrolment.organisation, "status": status, "deadline": enrolment.deadline,
        "enrolled_at": enrolment.at if status == ENROLLED else None,
        "withdrawn_at": enrolment.at if status == WITHDRAWN else None,
        "modules_required": len(enrolment.programme.required_modules),
    }


def _store_catalog(conn: Connection, enrolments: list[catalog.Enrolment]) -> None:
    """An enrolment carries its programme and cohort: either may be seen here first.
    Almost always they are stored already, as they are: written only if not."""
    db.upsert_changed(conn, t.cohorts, catalog.latest_by_id([_cohort_row(e.cohort) for e in enrolments]), "id")
    db.upsert_changed(conn, t.programmes, catalog.latest_by_id([_programme_row(e.programme) for e in enrolments]),
                      "id")


def on_learner_enrolled(conn: Connection, statements: list[dict]) -> None:
    enrolments = [catalog.enrolment(s) for s in statements]
    _store_catalog(conn, enrolments)
    # DO NOTHING on conflict: a withdrawal seen first must not be undone by its enrolment.
    rows = [_learner_row(e, ENROLLED) for e in enrolments]
    db.insert_ignoring_duplicates(conn, t.learner_enrolments, rows, ["registration"])
    # Facts that arrived before the enrolment count now.
    facts.refresh_learners(conn, {row["learner_key"] for row in rows})


def on_learner_withdrew(conn: Connection, statements: list[dict]) -> None:
    enrolments = [catalog.enrolment(s) for s in statements]
    _store_catalog(conn, enrolments)
    rows = [_learner_row(e, WITHDRAWN) for e in enrolments]
    # A withdrawal may arrive before its enrolment: the row is made, or only marked withdrawn.
    db.upsert(conn, t.learner_enrolments, rows, ["registration"], update=["status", "withdrawn_at"])


def on_learning_activity(conn: Connection, statements: list[dict]) -> None:
    """A player's or LMS's statement (via the LRS), or a final-test step: activity, and a
    verdict where the statement reports success."""
    facts.on_learning(conn, statements)


def on_certificate_earned(conn: Connection, statements: list[dict]) -> None:
    facts.on_certificates(conn, statements, VALID)


def on_certificate_revoked(conn: Connection, statements: list[dict]) -> None:
    facts.on_certificates(conn, statements, REVOKED)


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

READ_MODELS = [t.accounts, t.programmes, t.cohorts, t.learner_enrolments, t.learner_statements, t.voided_statements,
               t.learner_activities, t.learner_activity_days, t.final_test_outcomes, t.final_test_attempts,
               t.learner_certificates]


def projection(settings: Settings) -> Projection:
    # Every statement on these topics is also stored in the LRS (issue 3), whatever its type.
    topics = [settings.topic("enrollment"), settings.topic("lrs"), settings.topic("assessment"),
              settings.topic("certification"), settings.topic("accounts")]
    # Accounts are projected, never stored in the LRS: they carry secret hashes.
    return Projection(topics=topics, handlers=AlsoStoredInLrs(HANDLERS, private=account_handlers(t.accounts)),
                      tables=READ_MODELS,
                      after_replay=facts.refresh_everyone)
