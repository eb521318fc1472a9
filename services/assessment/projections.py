"""Statements to read models: enrolments (from enrollment), final-test rules and attempts
(from our own topic), results an LMS reported (from the LRS topic), and per learner the
pass/fail standing.

Handlers are idempotent, and the standing is recomputed from the stored facts by a pure
function (domain.summarise) whenever any of them changes, so facts arriving in another
order across topics and partitions, live or in a rebuild, end in the same rows. Only
statement timestamps are used, never the clock.
"""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.assessment import tables as t
from services.assessment.domain import BEST, Outcome, summarise
from services.assessment.repository import LRS, OWN
from shared import catalog, db, xapi
from shared.account_tables import handlers as account_handlers
from shared.config import Settings
from shared.consumer import Projection
from shared.errors import reads_contract
from shared.events import EventType
from shared.vocabulary import ENROLLED, WITHDRAWN

VOIDED = "voided"  # attempt_log.source of a result an LMS voided


# --- enrollment topic --------------------------------------------------------------------------

def _programme_row(programme: catalog.Programme) -> dict:
    return {"id": programme.id, "code": programme.code, "final_test": programme.final_test,
            "activity": programme.activity}


def on_programme_defined(conn: Connection, statements: list[dict]) -> None:
    rows = [_programme_row(catalog.programme(s["object"])) for s in statements]
    db.upsert(conn, t.known_programmes, catalog.latest_by_id(rows), ["id"])


def _enrolment_row(stmt: dict, status: str) -> dict:
    enrolment = catalog.enrolment(stmt)
    return {
        "registration": enrolment.registration, "programme_id": enrolment.programme.id,
        "cohort_id": enrolment.cohort and enrolment.cohort.id, "learner_key": enrolment.learner_key,
        "agency": enrolment.cohort and enrolment.cohort.agency,
        "province": enrolment.cohort and enrolment.cohort.province,
        "final_test": enrolment.programme.final_test, "actor": enrolment.actor,
        "programme": enrolment.programme.activity, "cohort": enrolment.cohort and enrolment.cohort.activity,
        "status": status, "deadline": enrolment.deadline,
        "enrolled_at": enrolment.at if status == ENROLLED else None,
        "withdrawn_at": enrolment.at if status == WITHDRAWN else None,
    }


def on_learner_enrolled(conn: Connection, statements: list[dict]) -> None:
    on_programme_defined(conn, statements)
    rows = [_enrolment_row(s, ENROLLED) for s in statements]
    # DO NOTHING on conflict: a withdrawal seen first must not be undone by its enrolment.
    db.insert_ignoring_duplicates(conn, t.known_enrolments, rows, ["registration"])
    for row in rows:
        conn.execute(t.known_enrolments.update()
                     .where(t.known_enrolments.c.registration == row["registration"],
                            t.known_enrolments.c.enrolled_at.is_(None))
                     .values(enrolled_at=row["enrolled_at"]))
    refresh(conn, [row["registration"] for row in rows])


def on_learner_withdrew(conn: Connection, statements: list[dict]) -> None:
    rows = [_enrolment_row(s, WITHDRAWN) for s in statements]
    # A withdrawal may arrive before its enrolment: the row is made, or only marked withdrawn.
    db.upsert(conn, t.known_enrolments, rows, ["registration"], update=["status", "withdrawn_at"])
    refresh(conn, [row["registration"] for row in rows])


# --- our own topic -----------------------------------------------------------------------------

@reads_contract
def _test_rule_row(stmt: dict) -> dict:
    details = xapi.object_extensions(stmt)[xapi.EXT_FINAL_TEST]
    return {"programme_id": details["programme_id"], "max_attempts": details["max_attempts"],
            "counting": details["counting"], "pass_mark": details["pass_mark"],
            "revision": details["revision"], "defined_at": xapi.moment(stmt)}


def on_final_test_defined(conn: Connection, statements: list[dict]) -> None:
    for stmt in statements:
        row = _test_rule_row(stmt)
        current = conn.scalar(sa.select(t.test_rules.c.revision)
                              .where(t.test_rules.c.programme_id == row["programme_id"]))
        # The newest definition wins whatever the arrival order (operators' statements
        # are keyed by operator, so two definitions may sit on different partitions).
        if current is not None and current >= row["revision"]:
            continue
        db.upsert(conn, t.test_rules, [row], ["programme_id"])
        refresh(conn, list(conn.scalars(sa.select(t.known_enrolments.c.registration)
                                        .where(t.known_enrolments.c.programme_id == row["programme_id"]))))


def _attempt_details(stmt: dict) -> dict:
    return xapi.context_extensions(stmt)[xapi.EXT_ATTEMPT]


@reads_contract
def _own_attempt_row(stmt: dict) -> dict:
    details = _attempt_details(stmt)
    return {"attempt_id": details["id"], "source": OWN, "registration": xapi.registration(stmt),
            "learner_key": xapi.learner_key(stmt["actor"]), "activity_id": xapi.object_id(stmt),
            "number": details["number"], "started_at": xapi.parse_timestamp(details["started_at"]),
            "finished_at": None, "scaled": None, "success": None}


def on_attempt_started(conn: Connection, statements: list[dict]) -> None:
    rows = [_own_attempt_row(s) for s in statements]
    db.insert_ignoring_duplicates(conn, t.attempt_log, rows, ["attempt_id"])
    refresh(conn, [row["registration"] for row in rows])


@reads_contract
def _decided_attempt_row(stmt: dict) -> dict:
    result = stmt["result"]
    return _own_attempt_row(stmt) | {
        "finished_at": xapi.moment(stmt), "scaled": result["score"]["scaled"], "success": bool(result["success"])}


def on_attempt_decided(conn: Connection, statements: list[dict]) -> None:
    rows = [_decided_attempt_row(stmt) for stmt in statements]
    db.upsert(conn, t.attempt_log, list({r["attempt_id"]: r for r in rows}.values()), ["attempt_id"])
    refresh(conn, [row["registration"] for row in rows])


# --- the LRS topic -----------------------------------------------------------------------------

def _reported_result(stmt: dict) -> dict | None:
    """A result an LMS reported, or None if the statement is no test result.

    Every statement with result.success is kept, whether or not its activity is yet known
    as some programme's final test: the programme may arrive later on another topic."""
    result = stmt.get("result") or {}
    if not isinstance(result.get("success"), bool) or xapi.moment(stmt) is None:
        return None
    if xapi.EXT_ATTEMPT in xapi.context_extensions(stmt) or stmt.get("authority") == AUTHORITY:
        return None  # our own statement echoed by the LRS; counted from our topic already
    scaled = (result.get("score") or {}).get("scaled")
    return {"attempt_id": stmt["id"], "source": LRS, "registration": xapi.registration(stmt),
            "learner_key": xapi.learner_key(stmt["actor"]), "activity_id": xapi.object_id(stmt) or "",
            "number": None, "started_at": None, "finished_at": xapi.moment(stmt),
            "scaled": float(scaled) if isinstance(scaled, (int, float)) else None, "success": result["success"]}


def _voided_id(stmt: dict) -> str | None:
    obj = stmt["object"]
    if xapi.verb_id(stmt) == xapi.VOIDED.id and obj.get("objectType") == "StatementRef":
        return obj.get("id")
    return None


def on_lrs_statement(conn: Connection, statements: list[dict]) -> None:
    voided = [v for v in map(_voided_id, statements) if v]
    rows = [row for row in map(_reported_result, statements) if row is not None]
    affected = [(r.learner_key, r.activity_id) for r in conn.execute(
        sa.select(t.attempt_log.c.learner_key, t.attempt_log.c.activity_id)
        .where(t.attempt_log.c.attempt_id.in_(voided), t.attempt_log.c.source == LRS))] if voided else []
    # A voided result leaves a tombstone rather than a gap, so that the result itself,
    # if it arrives after its voiding (another learner key, another partition), stays out.
    tombstones = [{"attempt_id": v, "source": VOIDED, "registration": None, "learner_key": "", "activity_id": "",
                   "number": None, "started_at": None, "finished_at": None, "scaled": None, "success": None}
                  for v in dict.fromkeys(voided)]
    db.upsert(conn, t.attempt_log, tombstones, ["attempt_id"])
    db.insert_ignoring_duplicates(conn, t.attempt_log, rows, ["attempt_id"])
    e = t.known_enrolments
    registrations = []
    for learner_key, activity_id in set(affected) | {(r["learner_key"], r["activity_id"]) for r in rows}:
        registrations += conn.scalars(sa.select(e.c.registration).where(
            e.c.learner_key == learner_key, e.c.final_test == activity_id)).all()
    refresh(conn, registrations)


# --- the standing ------------------------------------------------------------------------------

def _outcome(row) -> Outcome:
    return Outcome(id=row.attempt_id, started_at=row.started_at, finished_at=row.finished_at,
                   scaled=row.scaled, success=row.success)


def refresh(conn: Connection, registrations: list[str]) -> None:
    """Recompute the standing of these enrolments from everything known about them.

    An LMS's result belongs to the enrolment of the same learner whose programme has
    that final test (one enrolment per learner and programme), so it counts even when
    the LMS never heard of our registration id."""
    for chunk in db.chunks(sorted(set(filter(None, registrations)))):
        enrolments = conn.execute(sa.select(t.known_enrolments)
                                  .where(t.known_enrolments.c.registration.in_(chunk))).all()
        if not enrolments:
            continue
        rules = {r.programme_id: r for r in conn.execute(sa.select(t.test_rules).where(
            t.test_rules.c.programme_id.in_({e.programme_id for e in enrolments})))}
        log = t.attempt_log
        facts = conn.execute(sa.select(log).where(sa.or_(
            sa.and_(log.c.source == OWN, log.c.registration.in_(chunk)),
            sa.and_(log.c.source == LRS, log.c.learner_key.in_({e.learner_key for e in enrolments}))))).all()
        own, reported = defaultdict(list), defaultdict(list)
        for fact in facts:
            if fact.source == OWN:
                own[fact.registration].append(_outcome(fact))
            else:
                reported[(fact.learner_key, fact.activity_id)].append(_outcome(fact))
        rows = []
        for e in enrolments:
            rule = rules.get(e.programme_id)
            summary = summarise(own[e.registration] + reported[(e.learner_key, e.final_test)],
                                counting=rule.counting if rule else BEST,
                                max_attempts=rule.max_attempts if rule else None)
            rows.append({"registration": e.registration, "programme_id": e.programme_id, "cohort_id": e.cohort_id,
                         "learner_key": e.learner_key, "enrolment_status": e.status,
                         "attempts_used": summary.attempts_used, "best_score": summary.best_score,
                         "latest_score": summary.latest_score, "counted_score": summary.counted_score,
                         "status": summary.status, "decided_at": summary.decided_at})
        db.upsert(conn, t.learner_results, rows, ["registration"])


AUTHORITY = xapi.service_agent("assessment")

# Every event this service projects, in one place. Records on the LRS topic without an
# event-type header are read as LMS statements too.
HANDLERS = {
    EventType.PROGRAMME_DEFINED: on_programme_defined,
    EventType.LEARNER_ENROLLED: on_learner_enrolled,
    EventType.LEARNER_WITHDREW: on_learner_withdrew,
    EventType.FINAL_TEST_DEFINED: on_final_test_defined,
    EventType.ATTEMPT_STARTED: on_attempt_started,
    EventType.ATTEMPT_PASSED: on_attempt_decided,
    EventType.ATTEMPT_FAILED: on_attempt_decided,
    EventType.LRS_STATEMENT: on_lrs_statement,
    None: on_lrs_statement,
    **account_handlers(t.accounts),
}


def projection(settings: Settings) -> Projection:
    return Projection(topics=[settings.topic("enrollment"), settings.own_topic, settings.topic("lrs"),
                              settings.topic("accounts")],
                      handlers=HANDLERS, tables=t.READ_MODELS)
