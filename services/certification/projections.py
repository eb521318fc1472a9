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

from services.certification import handlers
from services.certification import tables as t
from services.certification.domain import COMPLETED, IN_PROGRESS, PASSED
from shared import db, xapi
from shared.config import Settings
from shared.consumer import Projection
from shared.events import EventType

# What an LMS or player says when a module is done (ARCHITECTURE.md, The LRS).
MODULE_VERBS = {xapi.COMPLETED.id: COMPLETED, xapi.SATISFIED.id: COMPLETED, xapi.PASSED.id: PASSED}


def _moment(stmt: dict):
    text = stmt.get("timestamp") or stmt.get("stored")
    return xapi.parse_timestamp(text) if text else None


def _latest_by_id(rows: list[dict]) -> list[dict]:
    return list({row["id"]: row for row in rows}.values())


def _programme(activity: dict) -> dict:
    details = xapi.object_extensions({"object": activity})[xapi.EXT_PROGRAMME]
    return {"id": details["id"], "code": details["code"], "title": xapi.activity_name(activity) or details["code"],
            "required_modules": list(details["required_modules"]), "final_test": details["final_test"]}


def _cohort(activity: dict) -> dict:
    details = xapi.object_extensions({"object": activity})[xapi.EXT_COHORT]
    return {"id": details["id"], "programme_id": details["programme_id"],
            "name": xapi.activity_name(activity) or details["id"], "agency": details.get("agency")}


# --- enrollment topic --------------------------------------------------------------------------

def on_programme_defined(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.programmes, _latest_by_id([_programme(s["object"]) for s in statements]), ["id"])


def on_cohort_defined(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    db.upsert(conn, t.cohorts, _latest_by_id([_cohort(s["object"]) for s in statements]), ["id"])


def _enrolment_row(stmt: dict) -> dict:
    programme = _programme(stmt["object"])
    cohort_activity = xapi.context_activity(stmt, "grouping")
    cohort = _cohort(cohort_activity) if cohort_activity else None
    ext = xapi.context_extensions(stmt)
    deadline = ext.get(xapi.EXT_DEADLINE)
    return {
        "registration": xapi.registration(stmt), "programme_id": programme["id"],
        "programme_code": programme["code"], "programme_title": programme["title"],
        "programme_activity": stmt["object"], "required_modules": programme["required_modules"],
        "final_test": programme["final_test"], "cohort_id": cohort and cohort["id"],
        "cohort_name": cohort and cohort["name"], "cohort_activity": cohort_activity,
        "learner_key": xapi.learner_key(stmt["actor"]), "actor": stmt["actor"], "name": stmt["actor"].get("name"),
        "organisation": ext.get(xapi.EXT_ORGANISATION),
        "deadline": xapi.parse_timestamp(deadline) if deadline else None,
        "enrolled_at": None, "withdrawn_at": None, "standing": IN_PROGRESS, "qualified_at": None,
    }


def _store_enrolments(conn: Connection, statements: list[dict], moment_column: str) -> list[dict]:
    rows = [_enrolment_row(s) | {moment_column: _moment(s)} for s in statements]
    db.upsert(conn, t.programmes, _latest_by_id([_programme(s["object"]) for s in statements]), ["id"])
    cohorts = [_cohort(a) for a in (xapi.context_activity(s, "grouping") for s in statements) if a]
    db.upsert(conn, t.cohorts, _latest_by_id(cohorts), ["id"])
    # DO NOTHING, then set only this statement's moment: an enrolment and its withdrawal
    # may arrive in either order, and neither undoes the other.
    db.insert_ignoring_duplicates(conn, t.learner_enrolments, rows, ["registration"])
    e = t.learner_enrolments
    conn.execute(e.update().where(e.c.registration == sa.bindparam("r")).values({moment_column: sa.bindparam("m")}),
                 [{"r": row["registration"], "m": row[moment_column]} for row in rows])
    return rows


def on_learner_enrolled(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    rows = _store_enrolments(conn, statements, "enrolled_at")
    handlers.decide_for(conn, settings, [row["learner_key"] for row in rows])


def on_learner_withdrew(settings: Settings, conn: Connection, statements: list[dict]) -> None:
    rows = _store_enrolments(conn, statements, "withdrawn_at")
    handlers.decide_for(conn, settings, [row["learner_key"] for row in rows])
    handlers.undo_if_withdrawn_before_qualifying(conn, settings, rows)


# --- achievements: the LRS and assessment topics -------------------------------------------------

def _achievement(stmt: dict, kind: str) -> dict | None:
    moment, activity_id = _moment(stmt), xapi.object_id(stmt)
    if moment is None or not activity_id or stmt["object"].get("objectType", "Activity") != "Activity":
        return None
    return {"statement_id": stmt["id"], "learner_key": xapi.learner_key(stmt["actor"]),
            "activity_id": activity_id, "kind": kind, "achieved_at": moment}


def _store_achievements(settings: Settings, conn: Connection, rows: list[dict]) -> None:
    if rows:
        db.insert_ignoring_duplicates(conn, t.achievements, rows, ["statement_id"])
        handlers.decide_for(conn, settings, [row["learner_key"] for row in rows])


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
    _store_achievements(settings, conn, rows)
    if voided:
        a = t.achievements
        learners = conn.scalars(sa.select(a.c.learner_key).where(a.c.statement_id.in_(voided))).all()
        conn.execute(a.delete().where(a.c.statement_id.in_(voided)))
        handlers.decide_for(conn, settings, learners)


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
        topics=[settings.topic("enrollment"), settings.topic("lrs"), settings.topic("assessment")],
        handlers={event_type: partial(handler, settings) for event_type, handler in HANDLERS.items()},
        tables=t.READ_MODELS)
