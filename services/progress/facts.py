"""Learner facts from the topics (activity, final-test outcomes, certificates), and the
progress rows of each enrolment derived from them.

Facts are kept per learner and statement, whatever the registration and in any order,
and summed per learner and activity (learner_activities); a learner's enrolments are
derived from those sums with services.progress.domain. So a statement that arrives
before its enrolment, or carries no registration, still counts once the enrolment is
there, and a voided statement stops counting whenever its void arrives.

Incremental (issue 11): a batch's new facts are merged into the sums they change (a first
and last moment, the earliest completion, whole milliseconds: each merge commutes, so the
order facts arrive in does not matter), and of each touched enrolment only the parts the
batch can change are derived again: the activity figures from the learner's sums (a row
per activity, not per statement), the final-test verdict from the learner's final-test
facts, the certificate from its row. A void takes a fact away, which no sum can undo:
those learners' sums are derived again from their remaining facts (`rebuild_activities`),
as everyone's are at the end of a rebuild (`refresh_everyone`); the two paths give the
same rows (tests/integration/test_progress_incremental.py).
"""
from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.progress import domain
from services.progress import tables as t
from shared import db, xapi
from shared.consumer import replaying
from shared.vocabulary import VALID

# The progress columns of learner_enrolments, by what they are derived from.
ACTIVITY_COLUMNS = ("modules_required", "modules_completed", "modules_completed_at", "first_activity_at",
                    "last_activity_at", "time_spent_seconds")
VERDICT_COLUMNS = ("final_test_status", "final_test_attempts", "final_test_best_score", "final_test_decided_at")
CERTIFICATE_COLUMNS = ("certificate_number", "certificate_status", "certified_at")
DERIVED_COLUMNS = (*ACTIVITY_COLUMNS, *VERDICT_COLUMNS, "finished_at", *CERTIFICATE_COLUMNS)




def milliseconds(seconds: float) -> int:
    """A statement's duration in whole milliseconds, half up (as the SQL in
    `rebuild_activities` rounds it)."""
    return int(seconds * 1000 + 0.5)


# --- the facts --------------------------------------------------------------------------

def _voided_ids(conn: Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in db.chunks(ids):
        found.update(conn.scalars(sa.select(t.voided_statements.c.statement_id)
                                  .where(db.among(conn, t.voided_statements.c.statement_id, chunk))))
    return found


def record_voids(conn: Connection, statements: list[dict]) -> set[str]:
    """An LRS voiding statement takes back the statement it points at; return the learners
    who lost a fact."""
    ids = [str(s["object"]["id"]).lower() for s in statements
           if xapi.verb_id(s) == xapi.VOIDED.id and s["object"].get("objectType") == "StatementRef"]
    if not ids:
        return set()
    db.insert_ignoring_duplicates(conn, t.voided_statements, [{"statement_id": i} for i in ids], ["statement_id"])
    touched: set[str] = set()
    for table in (t.learner_statements, t.final_test_outcomes, t.final_test_attempts):
        for chunk in db.chunks(ids):
            touched.update(conn.scalars(sa.delete(table).where(db.among(conn, table.c.statement_id, chunk))
                                        .returning(table.c.learner_key)))
    return touched


def activity_rows(statements: list[dict]) -> list[dict]:
    """What each statement says a learner did on an activity."""
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
        rows += _modules_satisfied(stmt, rows[-1])
    return rows


def _modules_satisfied(stmt: dict, fact: dict) -> list[dict]:
    """A satisfied cmi5 course completes each module it stands for (xapi.modules_satisfied)."""
    return [{**fact, "statement_id": fact_id, "activity_id": module, "completed": True, "seconds": 0.0}
            for fact_id, module in xapi.modules_satisfied(stmt)]


def _attempt_id(stmt: dict) -> str | None:
    """The assessment service's attempt id (context extension); an LMS's statements have none."""
    details = xapi.context_extensions(stmt).get(xapi.EXT_ATTEMPT)
    found = details.get("id") if isinstance(details, dict) else None
    # Ours are UUIDs; anything else an LMS may have put there is no attempt of ours.
    return found if isinstance(found, str) and 0 < len(found) <= 36 else None


def _count(details: dict, name: str) -> int | None:
    value = details.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def attempt_rows(statements: list[dict]) -> list[dict]:
    """Every final-test attempt the assessment service tells of, from its start: an
    attempt opened and not yet submitted is an attempt, as assessment counts it."""
    return [{"statement_id": stmt["id"].lower(), "learner_key": xapi.learner_key(stmt["actor"]),
             "activity_id": xapi.object_id(stmt), "attempt_id": attempt_id, "at": xapi.moment(stmt)}
            for stmt in statements if (attempt_id := _attempt_id(stmt)) and xapi.object_id(stmt)]


def outcome_rows(statements: list[dict]) -> list[dict]:
    """Every statement that reports success or failure: final-test verdicts come from
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
    return rows


def _insert_new(conn: Connection, table: sa.Table, rows: list[dict]) -> list[dict]:
    """Insert fact rows, skipping statement ids stored already; return those inserted."""
    if not rows:
        return []
    columns = list(rows[0])
    convert = [db.to_driver(conn, table.c[name]) for name in columns]
    first: dict[str, dict] = {}
    for row in rows:  # a fact once, as its statement is
        first.setdefault(row["statement_id"], row)
    unique = list(first.values())
    inserted = set(db.insert_new_fast(conn, table, columns, [
        tuple(f(row[name]) for f, name in zip(convert, columns, strict=True)) for row in unique], "statement_id"))
    return [row for row in unique if row["statement_id"] in inserted]


def on_learning(conn: Connection, statements: list[dict]) -> None:
    """A batch of LRS, final-test and voiding statements: store the facts, then bring the
    touched learners' sums and rows up to date."""
    lost = record_voids(conn, statements)
    kinds = (activity_rows(statements), attempt_rows(statements), outcome_rows(statements))
    ids = sorted({row["statement_id"] for rows in kinds for row in rows})
    voided = _voided_ids(conn, ids) if ids else set()
    activity, attempts, outcomes = ([row for row in rows if row["statement_id"] not in voided] for rows in kinds)
    activity = _insert_new(conn, t.learner_statements, activity)
    db.insert_ignoring_duplicates(conn, t.final_test_attempts, attempts, ["statement_id"])
    db.insert_ignoring_duplicates(conn, t.final_test_outcomes, outcomes, ["statement_id"])
    db.insert_ignoring_duplicates(
        conn, t.learner_activity_days,
        [{"learner_key": k, "day": d} for k, d in sorted({(r["learner_key"], r["at"].date()) for r in activity})],
        ["learner_key", "day"])
    if lost:
        _rebuild_days(conn, lost)
    if replaying(conn):  # the sums and rows are derived once, after the last batch
        return
    if lost:
        rebuild_activities(conn, lost)
    fresh = [row for row in activity if row["learner_key"] not in lost]
    sums = _merge_activities(conn, fresh, {row["learner_key"] for row in fresh} | lost)
    _derive(conn, sums, verdicts={row["learner_key"] for row in (*attempts, *outcomes)} | lost,
            certificates=lost)


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
    lc = t.learner_certificates
    existing: dict[tuple[str, str], object] = {}
    for chunk in db.chunks(sorted({learner for learner, _ in rows})):
        existing.update(((r.learner_key, r.programme_id), r.changed_at) for r in conn.execute(
            sa.select(lc.c.learner_key, lc.c.programme_id, lc.c.changed_at)
            .where(db.among(conn, lc.c.learner_key, chunk))))
    # The latest change wins, whatever order the earned and revoked statements arrive in.
    fresh = [row for key, row in rows.items() if key not in existing or existing[key] <= row["changed_at"]]
    db.upsert(conn, lc, fresh, ["learner_key", "programme_id"])
    return {learner for learner, _ in rows}


def on_certificates(conn: Connection, statements: list[dict], status: str) -> None:
    touched = record_certificates(conn, statements, status)
    if touched and not replaying(conn):
        _derive(conn, {}, verdicts=set(), certificates=touched)


def _learners_with_facts(conn: Connection, learner_keys: set[str]) -> set[str]:
    """Those of these learners that have any fact to summarise."""
    found: set[str] = set()
    keys = sorted(learner_keys)
    for table in (t.learner_activities, t.final_test_outcomes, t.final_test_attempts, t.learner_certificates):
        for chunk in db.chunks(keys):
            found.update(conn.scalars(sa.select(table.c.learner_key)
                                      .where(db.among(conn, table.c.learner_key, chunk)).distinct()))
    return found


def refresh_learners(conn: Connection, learner_keys: set[str]) -> None:
    """Derive every progress column of these learners' enrolments from their sums and
    facts, for those that have any (an enrolment that arrives after its learner's
    statements; most learners have none yet).

    Not during a rebuild: the rows are derived once, after the last batch."""
    if not learner_keys or replaying(conn):
        return
    with_facts = _learners_with_facts(conn, learner_keys)
    if with_facts:
        _derive(conn, _read_activities(conn, with_facts), verdicts=with_facts, certificates=with_facts)


def refresh_everyone(conn: Connection, part: int = 0, parts: int = 1) -> None:
    """Every learner's sums from their facts, and every enrolment of a learner with facts
    from those: the end of a rebuild, and the full recomputation the incremental path is
    checked against. A learner without any fact keeps the row their enrolment wrote, as
    the live path leaves it (`refresh_learners`): most of a campaign's learners, whose
    rows would be read and derived only to find nothing changed.

    Of `parts`, only the learners of `part` (by a hash of their key): processes side by
    side each take one, and touch only their learners' rows."""
    with_facts: set[str] = set()
    for table in (t.learner_statements, t.final_test_outcomes, t.final_test_attempts, t.learner_certificates):
        with_facts.update(conn.scalars(sa.select(table.c.learner_key).distinct()))
    if parts == 1:
        rebuild_activities(conn)  # one INSERT ... SELECT over everyone
    else:
        with_facts = {key for key in with_facts if zlib.crc32(key.encode()) % parts == part}
        rebuild_activities(conn, with_facts)
    learners = with_facts & set(conn.scalars(sa.select(t.learner_enrolments.c.learner_key).distinct()))
    for chunk in db.chunks(sorted(learners), 2000):
        keys = set(chunk)
        _derive(conn, _read_activities(conn, keys), verdicts=keys, certificates=keys, learners=keys)


# --- the sums ---------------------------------------------------------------------------

Sums = dict[str, dict[str, list]]  # learner -> activity -> [first_at, last_at, completed_at, milliseconds]


def _ms_sql(conn: Connection, seconds):
    """`milliseconds(seconds)` in SQL: both compute seconds * 1000 + 0.5 in double precision
    and take its floor (SQLite's CAST truncates, which is the floor for durations >= 0)."""
    if conn.dialect.name == "postgresql":
        return sa.func.floor(seconds * 1000 + 0.5)
    return sa.cast(seconds * 1000 + 0.5, sa.Integer)


def rebuild_activities(conn: Connection, learner_keys: Iterable[str] | None = None) -> None:
    """Derive the sums of these learners (None: everyone's) from their stored statements."""
    ls, la = t.learner_statements, t.learner_activities
    query = sa.select(ls.c.learner_key, ls.c.activity_id, sa.func.min(ls.c.at), sa.func.max(ls.c.at),
                      sa.func.min(sa.case((ls.c.completed.is_(True), ls.c.at))),
                      sa.cast(sa.func.sum(_ms_sql(conn, ls.c.seconds)), sa.BigInteger)
                      ).group_by(ls.c.learner_key, ls.c.activity_id)
    columns = ["learner_key", "activity_id", "first_at", "last_at", "completed_at", "milliseconds"]
    if learner_keys is None:
        conn.execute(la.delete())
        conn.execute(la.insert().from_select(columns, query))
        return
    for chunk in db.chunks(sorted(learner_keys)):
        conn.execute(la.delete().where(db.among(conn, la.c.learner_key, chunk)))
        conn.execute(la.insert().from_select(columns, query.where(db.among(conn, ls.c.learner_key, chunk))))


def _read_activities(conn: Connection, learner_keys: Iterable[str]) -> Sums:
    la = t.learner_activities
    sums: Sums = {key: {} for key in learner_keys}
    for chunk in db.chunks(sorted(sums)):
        for row in conn.execute(sa.select(la.c.learner_key, la.c.activity_id, la.c.first_at, la.c.last_at,
                                          la.c.completed_at, la.c.milliseconds)
                                .where(db.among(conn, la.c.learner_key, chunk))):
            sums[row[0]][row[1]] = [row[2], row[3], row[4], row[5]]
    return sums


def _merge_activities(conn: Connection, rows: list[dict], learner_keys: set[str]) -> Sums:
    """These new facts merged into their learners' sums (stored); return the sums of
    `learner_keys` as they now stand."""
    sums = _read_activities(conn, learner_keys)
    changed: set[tuple[str, str]] = set()
    for row in rows:
        learner, activity, at = row["learner_key"], row["activity_id"], row["at"]
        completed = at if row["completed"] else None
        ms = milliseconds(row["seconds"])
        old = sums[learner].get(activity)
        if old is None:
            sums[learner][activity] = [at, at, completed, ms]
        else:
            if at < old[0]:
                old[0] = at
            if at > old[1]:
                old[1] = at
            if completed is not None and (old[2] is None or completed < old[2]):
                old[2] = completed
            old[3] += ms
        changed.add((learner, activity))
    db.upsert(conn, t.learner_activities, [
        {"learner_key": learner, "activity_id": activity, "first_at": s[0], "last_at": s[1], "completed_at": s[2],
         "milliseconds": s[3]}
        for learner, activity in sorted(changed) for s in [sums[learner][activity]]], ["learner_key", "activity_id"])
    return sums


def _rebuild_days(conn: Connection, learner_keys: set[str]) -> None:
    days = t.learner_activity_days
    for chunk in db.chunks(sorted(learner_keys)):
        conn.execute(days.delete().where(db.among(conn, days.c.learner_key, chunk)))
        found = {(r.learner_key, r.at.date()) for r in conn.execute(
            sa.select(t.learner_statements.c.learner_key, t.learner_statements.c.at)
            .where(db.among(conn, t.learner_statements.c.learner_key, chunk)))}
        db.insert_ignoring_duplicates(conn, days, [{"learner_key": k, "day": d} for k, d in sorted(found)],
                                      ["learner_key", "day"])


# --- the rows ---------------------------------------------------------------------------

def _programmes(conn: Connection) -> dict:
    return {row.id: row for row in conn.execute(sa.select(t.programmes))}


def _derive(conn: Connection, sums: Sums, verdicts: set[str], certificates: set[str],
            learners: set[str] | None = None) -> None:
    """Bring the enrolments of the touched learners up to date: the activity columns of
    those in `sums`, the verdict of those in `verdicts`, the certificate of those in
    `certificates`; the rest of each row is kept as stored. Only rows that change are
    written."""
    touched = learners if learners is not None else set(sums) | verdicts | certificates
    if not touched:
        return
    le = t.learner_enrolments
    programmes = None
    updates = []
    for chunk in db.chunks(sorted(touched)):
        enrolments = conn.execute(sa.select(le.c.registration, le.c.learner_key, le.c.programme_id,
                                            *[le.c[name] for name in DERIVED_COLUMNS])
                                  .where(db.among(conn, le.c.learner_key, chunk))).all()
        # Only enrolled learners have anything to show; a learner's enrolment derives
        # their row then (on_learner_enrolled). Most LRS traffic from others costs no reads.
        if not enrolments:
            continue
        if programmes is None:
            programmes = _programmes(conn)
        enrolled = sorted({e.learner_key for e in enrolments})
        outcomes: dict[tuple[str, str], list[domain.Outcome]] = defaultdict(list)
        started: dict[tuple[str, str], set[str]] = defaultdict(set)
        judged = [k for k in enrolled if k in verdicts]
        if judged:
            fo, fa = t.final_test_outcomes, t.final_test_attempts
            for row in conn.execute(sa.select(fo.c.learner_key, fo.c.activity_id, fo.c.success, fo.c.score, fo.c.at,
                                              fo.c.attempt_id, fo.c.attempts_used, fo.c.attempts_allowed)
                                    .where(db.among(conn, fo.c.learner_key, judged))):
                outcomes[(row[0], row[1])].append(domain.Outcome(*row[2:]))
            for row in conn.execute(sa.select(fa.c.learner_key, fa.c.activity_id, fa.c.attempt_id)
                                    .where(db.among(conn, fa.c.learner_key, judged))):
                started[(row[0], row[1])].add(row[2])
        certified = {}
        holders = [k for k in enrolled if k in certificates]
        if holders:
            lc = t.learner_certificates
            certified = {(row.learner_key, row.programme_id): row for row in conn.execute(
                sa.select(lc.c.learner_key, lc.c.programme_id, lc.c.number, lc.c.status, lc.c.issued_at)
                .where(db.among(conn, lc.c.learner_key, holders)))}
        for enrolment in enrolments:
            programme = programmes.get(enrolment.programme_id)
            if programme is None:
                continue
            learner = enrolment.learner_key
            old = dict(zip(DERIVED_COLUMNS, enrolment[3:], strict=True))  # the select: 3 columns, then these
            new = dict(old)
            if learner in sums:
                activities = {a: domain.Activity(s[0], s[1], s[2], s[3] / 1000) for a, s in sums[learner].items()}
                progress = domain.summarise(list(programme.required_modules), programme.final_test, activities,
                                            domain.Verdict(domain.NOT_ATTEMPTED))
                new.update(modules_required=progress.modules_required, modules_completed=progress.modules_completed,
                           modules_completed_at=progress.modules_completed_at,
                           first_activity_at=progress.first_activity_at, last_activity_at=progress.last_activity_at,
                           time_spent_seconds=progress.time_spent_seconds)
            if learner in verdicts:
                key = (learner, programme.final_test)
                verdict = domain.merge_verdicts(outcomes.get(key, []), started.get(key, set()))
                new.update(final_test_status=verdict.status, final_test_attempts=verdict.attempts,
                           final_test_best_score=verdict.best_score, final_test_decided_at=verdict.decided_at)
            if learner in certificates:
                certificate = certified.get((learner, enrolment.programme_id))
                new.update(certificate_number=certificate.number if certificate else None,
                           certificate_status=certificate.status if certificate else None,
                           certified_at=certificate.issued_at if certificate and certificate.status == VALID
                           else None)
            new["finished_at"] = domain.finished_at(new["modules_completed_at"], new["final_test_status"],
                                                    new["final_test_decided_at"])
            if new != old:
                updates.append({"registration": enrolment.registration, **new})
    db.update_many(conn, le, "registration", updates)
