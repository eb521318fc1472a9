"""Statements to the per-learner view, and from it to certificates.

Facts come from three topics in no guaranteed order: enrolments, deadlines and
withdrawals (enrollment), module completions (the LRS), final-test passes (assessment).
Each handler stores its facts idempotently, then re-runs the rule (domain.decide) for the
learners concerned from everything stored, and issues the certificates now earned: all
inside the runner's batch transaction, together with the consumed offsets. Only
statement timestamps are used, never the clock.

A rebuild drops and refills the view (tables.READ_MODELS); certificates are state, not a
read model: the rule's certificate is issue 1 of (programme, learner), inserted with ON
CONFLICT DO NOTHING, so replaying the topics issues nothing that was issued before.
"""
from __future__ import annotations

from functools import partial

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.certification import issuance
from services.certification import tables as t
from services.certification.domain import COMPLETED, IN_PROGRESS, PASSED
from services.certification.repository import CertificationRepository
from shared import catalog, db, xapi
from shared.account_tables import handlers as account_handlers
from shared.config import Settings
from shared.consumer import Projection
from shared.events import EventType
from shared.unit_of_work import WithinTransaction

# What an LMS or player says when a module is done (docs/events.md, Certification).
MODULE_VERBS = {xapi.COMPLETED.id: COMPLETED, xapi.SATISFIED.id: COMPLETED, xapi.PASSED.id: PASSED}


def _programme(programme: catalog.Programme) -> dict:
    return {"id": programme.id, "code": programme.code, "title": programme.title,
            "required_modules": list(programme.required_modules), "final_test": programme.final_test}


def _cohort(cohort: catalog.Cohort) -> dict:
    return {"id": cohort.id, "programme_id": cohort.programme_id, "name": cohort.name, "agency": cohort.agency,
            "province": cohort.province}


def _decide(settings: Settings, conn: Connection, learner_keys) -> None:
    """Re-run the rule for these learners (issuance.py) within the batch's transaction;
    the certificates' statements are staged in the outbox, committed with the batch."""
    with _uow(settings, conn) as uow:
        issuance.decide_for(uow, settings.activity_base, learner_keys)
        uow.commit()


def _uow(settings: Settings, conn: Connection) -> WithinTransaction:
    return WithinTransaction(conn, t.outbox, settings.own_topic, CertificationRepository(conn))


# --- enrollment topic --------------------------------------------------------------------------

def on_programme_defined(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    rows = [_programme(catalog.programme(s["object"])) for s in statements]
    db.upsert(conn, t.programmes, catalog.latest_by_id(rows), ["id"])


def on_cohort_defined(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.cohorts, catalog.latest_by_id([_cohort(catalog.cohort(s["object"])) for s in statements]),
              ["id"])


def _enrolment_row(enrolment: catalog.Enrolment) -> dict:
    programme, cohort = enrolment.programme, enrolment.cohort
    return {
        "registration": enrolment.registration, "programme_id": programme.id,
        "programme_code": programme.code, "programme_title": programme.title,
        "programme_activity": programme.activity, "required_modules": list(programme.required_modules),
        "final_test": programme.final_test, "cohort_id": cohort and cohort.id,
        "cohort_name": cohort and cohort.name, "cohort_activity": cohort and cohort.activity,
        "learner_key": enrolment.learner_key, "actor": enrolment.actor, "name": enrolment.name,
        "organisation": enrolment.organisation, "deadline": enrolment.deadline,
        "enrolled_at": None, "withdrawn_at": None, "standing": IN_PROGRESS, "qualified_at": None,
    }


def _store_enrolments(conn: Connection, statements: list[dict], moment_column: str) -> list[dict]:
    enrolments = [catalog.enrolment(s) for s in statements]
    rows = [_enrolment_row(e) | {moment_column: e.at} for e in enrolments]
    # Restated by every enrolment, almost always as stored: written only if not.
    db.upsert_changed(conn, t.programmes, catalog.latest_by_id([_programme(e.programme) for e in enrolments]), "id")
    cohorts = [_cohort(e.cohort) for e in enrolments if e.cohort]
    db.upsert_changed(conn, t.cohorts, catalog.latest_by_id(cohorts), "id")
    # Set only this statement's moment: an enrolment and its withdrawal may arrive in
    # either order, and neither undoes the other.
    db.upsert(conn, t.learner_enrolments, rows, ["registration"], update=[moment_column])
    return rows


def on_learner_enrolled(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    rows = _store_enrolments(conn, statements, "enrolled_at")
    _decide(settings, conn, [row["learner_key"] for row in rows])


def on_learner_withdrew(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    rows = _store_enrolments(conn, statements, "withdrawn_at")
    with _uow(settings, conn) as uow:
        issuance.decide_for(uow, settings.activity_base, [row["learner_key"] for row in rows])
        issuance.undo_if_withdrawn_before_qualifying(uow, settings.activity_base, rows)
        uow.commit()


# --- achievements: the LRS and assessment topics -------------------------------------------------

def _achievement(stmt: dict, kind: str) -> dict | None:
    moment, activity_id = xapi.moment(stmt), xapi.object_id(stmt)
    if moment is None or not activity_id or stmt["object"].get("objectType", "Activity") != "Activity":
        return None
    return {"statement_id": stmt["id"], "learner_key": xapi.learner_key(stmt["actor"]),
            "activity_id": activity_id, "kind": kind, "achieved_at": moment}


def _store_achievements(settings: Settings, conn: Connection, rows: list[dict]) -> None:
    if rows:
        db.insert_ignoring_duplicates(conn, t.achievements, rows, ["statement_id"])
        _decide(settings, conn, [row["learner_key"] for row in rows])


def on_lrs_statement(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    """A module is done when the player says completed, passed or satisfied; anything
    else an LMS sends (launched, progressed, failed ...) decides nothing here. A voided
    completion no longer counts for decisions still to come."""
    rows, voided = [], []
    for stmt in statements:
        verb = xapi.verb_id(stmt)
        if verb == xapi.VOIDED.id and stmt["object"].get("objectType") == "StatementRef":
            voided.append(str(stmt["object"].get("id")))
            continue
        kind = MODULE_VERBS.get(verb)
        if kind is None or (stmt.get("result") or {}).get("success") is False:
            continue
        row = _achievement(stmt, kind)
        if row is not None:
            rows.append(row)
            # A satisfied cmi5 course: each module it stands for is done, as in progress.
            rows += [row | {"statement_id": fact_id, "activity_id": module}
                     for fact_id, module in xapi.modules_satisfied(stmt)]
    _store_achievements(settings, conn, rows)
    if voided:
        a = t.achievements
        learners = conn.scalars(sa.select(a.c.learner_key).where(a.c.statement_id.in_(voided))).all()
        conn.execute(a.delete().where(a.c.statement_id.in_(voided)))
        _decide(settings, conn, learners)


def on_attempt_passed(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    _store_achievements(settings, conn, [row for row in (_achievement(s, PASSED) for s in statements) if row])


# Every event this service projects, in one place. Each handler takes the settings (for
# the outbox topic) first; `projection` binds them. Records on the LRS topic without an
# event-type header are read as LMS statements too.
HANDLERS = {
    EventType.PROGRAMME_DEFINED: on_programme_defined,
    EventType.COHORT_DEFINED: on_cohort_defined,
    EventType.LEARNER_ENROLLED: on_learner_enrolled,
    EventType.LEARNER_WITHDREW: on_learner_withdrew,
    EventType.LRS_STATEMENT: on_lrs_statement,
    None: on_lrs_statement,
    EventType.ATTEMPT_PASSED: on_attempt_passed,
}


def projection(settings: Settings) -> Projection:
    return Projection(
        topics=[settings.topic("enrollment"), settings.topic("lrs"), settings.topic("assessment"),
                settings.topic("accounts")],
        handlers={**{event_type: partial(handler, settings) for event_type, handler in HANDLERS.items()},
                  **account_handlers(t.accounts)},
        tables=t.READ_MODELS)
