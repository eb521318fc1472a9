"""Learner facts from the topics (activity, final-test outcomes, certificates), and the
refresh that turns them into each enrolment's progress row.

Facts are kept per learner and statement, whatever the registration and in any order;
then every enrolment of an affected learner is recomputed with
services.progress.domain. So a statement that arrives before its enrolment, or carries
no registration, still counts once the enrolment is there, and a voided statement stops
counting whenever its void arrives.
"""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.progress import domain
from services.progress import tables as t
from shared import db, xapi
from shared.consumer import replaying
from shared.vocabulary import VALID


def _voided_ids(conn: Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in db.chunks(ids):
        found.update(conn.scalars(sa.select(t.voided_statements.c.statement_id)
                                  .where(t.voided_statements.c.statement_id.in_(chunk))))
    return found


def record_voids(conn: Connection, statements: list[dict]) -> set[str]:
    """An LRS voiding statement takes back the statement it points at."""
    ids = [str(s["object"]["id"]).lower() for s in statements
           if xapi.verb_id(s) == xapi.VOIDED.id and s["object"].get("objectType") == "StatementRef"]
    if not ids:
        return set()
    db.insert_ignoring_duplicates(conn, t.voided_statements, [{"statement_id": i} for i in ids], ["statement_id"])
    touched: set[str] = set()
    for table in (t.learner_statements, t.final_test_outcomes, t.final_test_attempts):
        for chunk in db.chunks(ids):
            touched.update(conn.scalars(sa.select(table.c.learner_key).where(table.c.statement_id.in_(chunk))))
            conn.execute(table.delete().where(table.c.statement_id.in_(chunk)))
    return touched


def record_activity(conn: Connection, statements: list[dict]) -> set[str]:
    """Keep what each statement says a learner did on an activity; return the learners touched."""
    rows = []
    for stmt in statements:
        activity_id = xapi.object_id(stmt)
        if not activity_id or stmt["object"].get("objectType", "Activity") != "Activity":
            continue
        result = stmt.get("result") or {}
        rows.append({"statement_id": stmt["id"].lower(), "learner_key": xapi.learner_key(stmt["actor"]),
                     "activity_id": activity_id, "at": xapi.moment(stmt),
                     "completed": xapi.verb_id(stmt) in domain.COMPLETION_VERBS or result.get("completion") is True,
                     "seconds": domain.duration_seconds(result.get("duration"))})
    return _insert_facts(conn, t.learner_statements, rows)


def _attempt_id(stmt: dict) -> str | None:
    """The assessment service's attempt id (context extension); an LMS's statements have none."""
    details = xapi.context_extensions(stmt).get(xapi.EXT_ATTEMPT)
    found = details.get("id") if isinstance(details, dict) else None
    # Ours are UUIDs; anything else an LMS may have put there is no attempt of ours.
    return found if isinstance(found, str) and 0 < len(found) <= 36 else None


def _count(details: dict, name: str) -> int | None:
    value = details.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_attempts(conn: Connection, statements: list[dict]) -> set[str]:
    """Keep every final-test attempt the assessment service tells of, from its start: an
    attempt opened and not yet submitted is an attempt, as assessment counts it."""
    rows = [{"statement_id": stmt["id"].lower(), "learner_key": xapi.learner_key(stmt["actor"]),
             "activity_id": xapi.object_id(stmt), "attempt_id": attempt_id, "at": xapi.moment(stmt)}
            for stmt in statements if (attempt_id := _attempt_id(stmt)) and xapi.object_id(stmt)]
    return _insert_facts(conn, t.final_test_attempts, rows)


def record_outcomes(conn: Connection, statements: list[dict]) -> set[str]:
    """Keep every statement that reports success or failure: final-test verdicts come from
    the assessment service and from external LMSs alike (issue 4). The assessment's say
    which attempt they decide and how many are used and allowed (result extension)."""
    rows = []
    for stmt in statements:
        result = stmt.get("result") or {}
        if result.get("success") is None or not xapi.object_id(stmt):
            continue
        told = (result.get("extensions") or {}).get(xapi.EXT_ATTEMPT)
        told = told if isinstance(told, dict) else {}
        rows.append({"statement_id": stmt["id"].lower(), "learner_key": xapi.learner_key(stmt["actor"]),
                     "activity_id": xapi.object_id(stmt), "success": bool(result["success"]),
                     "score": (result.get("score") or {}).get("scaled"), "at": xapi.moment(stmt),
                     "attempt_id": _attempt_id(stmt), "attempts_used": _count(told, "attempts_used"),
                     "attempts_allowed": _count(told, "attempts_allowed")})
    return _insert_facts(conn, t.final_test_outcomes, rows)


def _insert_facts(conn: Connection, table: sa.Table, rows: list[dict]) -> set[str]:
    voided = _voided_ids(conn, [row["statement_id"] for row in rows])
    rows = [row for row in rows if row["statement_id"] not in voided]
    db.insert_ignoring_duplicates(conn, table, rows, ["statement_id"])
    return {row["learner_key"] for row in rows}


def record_certificates(conn: Connection, statements: list[dict], status: str) -> set[str]:
    rows = {}
    for stmt in statements:
        details = xapi.object_extensions(stmt).get(xapi.EXT_CERTIFICATE) or {}
        learner = xapi.context_extensions(stmt).get(xapi.EXT_LEARNER) or stmt["actor"]
        at = xapi.moment(stmt)
        row = {"learner_key": xapi.learner_key(learner), "programme_id": details["programme_id"],
               "number": details.get("number"), "status": status,
               "issued_at": xapi.parse_timestamp(details["issued_at"]) if details.get("issued_at") else None,
               "changed_at": at}
        key = (row["learner_key"], row["programme_id"])
        if key not in rows or rows[key]["changed_at"] <= at:
            rows[key] = row
    fresh = []
    for (learner, programme), row in rows.items():
        existing = conn.execute(sa.select(t.learner_certificates.c.changed_at).where(
            t.learner_certificates.c.learner_key == learner,
            t.learner_certificates.c.programme_id == programme)).scalar()
        # The latest change wins, whatever order the earned and revoked statements arrive in.
        if existing is None or existing <= row["changed_at"]:
            fresh.append(row)
    db.upsert(conn, t.learner_certificates, fresh, ["learner_key", "programme_id"])
    return {learner for learner, _ in rows}


def _activities(rows) -> dict[str, dict[str, domain.Activity]]:
    merged: dict[str, dict[str, domain.Activity]] = defaultdict(dict)
    for row in rows:
        fact = domain.Activity(row.at, row.at, row.at if row.completed else None, row.seconds)
        merged[row.learner_key][row.activity_id] = domain.merge_activity(
            merged[row.learner_key].get(row.activity_id), fact)
    return merged


def learners_with_facts(conn: Connection, learner_keys: set[str]) -> set[str]:
    """Those of these learners that have any fact to summarise."""
    found: set[str] = set()
    keys = sorted(learner_keys)
    for table in (t.learner_statements, t.final_test_outcomes, t.final_test_attempts, t.learner_certificates):
        for chunk in db.chunks(keys):
            found.update(conn.scalars(sa.select(table.c.learner_key).where(table.c.learner_key.in_(chunk)).distinct()))
    return found


def refresh_learners(conn: Connection, learner_keys: set[str]) -> None:
    """Recompute the progress columns of every enrolment of these learners, and their
    activity days.

    Not during a rebuild: a row is a pure function of the learner's stored facts, so it
    is computed once, after the last batch (`refresh_everyone`), rather than again from
    all of the learner's facts so far on every batch that brings one more (most of a
    rebuild's time)."""
    if not learner_keys or replaying(conn):
        return
    _refresh(conn, learner_keys)


def refresh_everyone(conn: Connection) -> None:
    """Every enrolled learner's row from their facts: the end of a rebuild."""
    _refresh(conn, set(conn.scalars(sa.select(t.learner_enrolments.c.learner_key).distinct())))


def _refresh(conn: Connection, learner_keys: set[str]) -> None:
    if not learner_keys:
        return
    le = t.learner_enrolments
    programmes = {row.id: row for row in conn.execute(sa.select(t.programmes))}
    for chunk in db.chunks(sorted(learner_keys)):
        enrolments = conn.execute(sa.select(le.c.registration, le.c.learner_key, le.c.programme_id)
                                  .where(le.c.learner_key.in_(chunk))).all()
        # Only enrolled learners have anything to show; a learner's enrolment refreshes
        # them then (on_learner_enrolled). Most LRS traffic from others costs no reads.
        chunk = sorted({e.learner_key for e in enrolments})
        if not chunk:
            continue
        statement_rows = conn.execute(sa.select(t.learner_statements)
                                      .where(t.learner_statements.c.learner_key.in_(chunk))).all()
        conn.execute(t.learner_activity_days.delete().where(t.learner_activity_days.c.learner_key.in_(chunk)))
        db.insert_ignoring_duplicates(
            conn, t.learner_activity_days,
            [{"learner_key": k, "day": d} for k, d in {(r.learner_key, r.at.date()) for r in statement_rows}],
            ["learner_key", "day"])
        activities = _activities(statement_rows)
        outcomes: dict[tuple[str, str], list[domain.Outcome]] = defaultdict(list)
        for row in conn.execute(sa.select(t.final_test_outcomes).where(t.final_test_outcomes.c.learner_key.in_(chunk))):
            outcomes[(row.learner_key, row.activity_id)].append(domain.Outcome(
                row.success, row.score, row.at, row.attempt_id, row.attempts_used, row.attempts_allowed))
        started: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in conn.execute(sa.select(t.final_test_attempts.c.learner_key, t.final_test_attempts.c.activity_id,
                                          t.final_test_attempts.c.attempt_id)
                                .where(t.final_test_attempts.c.learner_key.in_(chunk))):
            started[(row.learner_key, row.activity_id)].add(row.attempt_id)
        certificates = {(row.learner_key, row.programme_id): row for row in conn.execute(
            sa.select(t.learner_certificates).where(t.learner_certificates.c.learner_key.in_(chunk)))}
        updates = []
        for enrolment in enrolments:
            programme = programmes.get(enrolment.programme_id)
            if programme is None:
                continue
            key = (enrolment.learner_key, programme.final_test)
            verdict = domain.merge_verdicts(outcomes.get(key, []), started.get(key, set()))
            progress = domain.summarise(list(programme.required_modules), programme.final_test,
                                        activities.get(enrolment.learner_key, {}), verdict)
            certificate = certificates.get((enrolment.learner_key, enrolment.programme_id))
            updates.append({
                "b_registration": enrolment.registration,
                "modules_required": progress.modules_required, "modules_completed": progress.modules_completed,
                "modules_completed_at": progress.modules_completed_at,
                "first_activity_at": progress.first_activity_at, "last_activity_at": progress.last_activity_at,
                "time_spent_seconds": progress.time_spent_seconds, "final_test_status": verdict.status,
                "final_test_attempts": verdict.attempts, "final_test_best_score": verdict.best_score,
                "final_test_decided_at": verdict.decided_at, "finished_at": progress.finished_at,
                "certificate_number": certificate.number if certificate else None,
                "certificate_status": certificate.status if certificate else None,
                "certified_at": certificate.issued_at if certificate and certificate.status == VALID else None,
            })
        if updates:
            conn.execute(le.update().where(le.c.registration == sa.bindparam("b_registration")), updates)
