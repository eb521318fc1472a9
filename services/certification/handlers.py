"""Certification commands: issuing (when the rule holds, inside the projection's batch
transaction), revoking and re-issuing (operators), and the issuance rules. Each writes
its state and its statements to the outbox in ONE transaction (docs/architecture.md, Writing).
"""
from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.certification import repository, statements
from services.certification import tables as t
from services.certification.domain import (
    IN_PROGRESS,
    LATE,
    SYSTEM,
    Achievement,
    Rules,
    certificate_number,
    decide,
    next_issue_no,
)
from shared import db, outbox, xapi
from shared.config import Settings
from shared.consumer import replaying
from shared.errors import Conflict


def new_verification_code() -> str:
    """128 random bits, URL-safe: printed on the certificate, never guessable."""
    return secrets.token_urlsafe(16)


# --- deciding and issuing (called by the projection, and after a rules change) ---------------

def decide_for(conn: Connection, settings: Settings, learner_keys: Iterable[str]) -> int:
    """Re-run the rule for every enrolment of these learners from the facts stored in the
    read model, record each standing, and issue the certificates now earned.

    Returns how many certificates were issued."""
    issued = 0
    e = t.learner_enrolments
    for chunk in db.chunks(sorted(set(learner_keys))):
        enrolments = conn.execute(sa.select(e).where(e.c.learner_key.in_(chunk))).all()
        if not enrolments:
            continue
        facts: dict[str, list[Achievement]] = defaultdict(list)
        for row in conn.execute(sa.select(t.achievements).where(t.achievements.c.learner_key.in_(chunk))):
            facts[row.learner_key].append(Achievement(row.activity_id, row.kind, row.achieved_at, row.statement_id))
        rules = repository.rules_for(conn, {row.programme_id for row in enrolments})
        changed, earned = [], []
        for row in enrolments:
            decision = decide(repository.enrolment_from_row(row), facts[row.learner_key],
                              rules.get(row.programme_id, Rules()))
            if (decision.standing, decision.qualified_at) != (row.standing, row.qualified_at):
                changed.append({"r": row.registration, "standing": decision.standing,
                                "qualified_at": decision.qualified_at})
            if decision.qualifies:
                earned.append((row, decision.qualified_at))
        if changed:
            conn.execute(e.update().where(e.c.registration == sa.bindparam("r"))
                         .values(standing=sa.bindparam("standing"), qualified_at=sa.bindparam("qualified_at")),
                         changed)
        issued += issue(conn, settings, earned)
    return issued


def issue(conn: Connection, settings: Settings, earned: list) -> int:
    """Issue the rule's certificate (issue 1) to each (enrolment row, qualified_at) that has
    never had one. ON CONFLICT DO NOTHING on (programme, learner, issue 1) makes this safe
    against redelivery, replays and a concurrent instance: only rows really inserted are
    numbered and announced. The issue date is the moment the rule came to hold (a
    statement timestamp), so whoever issues it, it reads the same. A rebuild issues
    nothing: the live run issued (and announced) every certificate there is."""
    if not earned or replaying(conn):
        return 0
    c = t.certificates
    keys = sorted({row.learner_key for row, _ in earned})
    already = set()
    for chunk in db.chunks(keys):
        found = conn.execute(sa.select(c.c.programme_id, c.c.learner_key).where(c.c.learner_key.in_(chunk)))
        already.update(tuple(row) for row in found)
    rows = [certificate_row(row, qualified_at, issue_no=1, issued_at=qualified_at, issued_by=SYSTEM)
            for row, qualified_at in earned if (row.programme_id, row.learner_key) not in already]
    if not rows:
        return 0
    inserted = set(db.insert_returning_new_ids(conn, c, rows, ["programme_id", "learner_key", "issue_no"]))
    fresh = [row for row in rows if row["id"] in inserted]
    number_and_announce(conn, settings, fresh)
    return len(fresh)


def certificate_row(enrolment, qualified_at, *, issue_no: int, issued_at, issued_by: str) -> dict:
    return {
        "id": str(uuid.uuid4()), "number": None, "verification_code": new_verification_code(),
        "programme_id": enrolment.programme_id, "programme_code": enrolment.programme_code,
        "programme_title": enrolment.programme_title, "programme_activity": enrolment.programme_activity,
        "cohort_id": enrolment.cohort_id, "cohort_name": enrolment.cohort_name,
        "cohort_activity": enrolment.cohort_activity, "registration": enrolment.registration,
        "learner_key": enrolment.learner_key, "actor": enrolment.actor,
        "learner_name": enrolment.name or enrolment.actor.get("name") or "",
        "organisation": enrolment.organisation, "issue_no": issue_no, "issued_at": issued_at,
        "qualified_at": qualified_at, "issued_by": issued_by,
        "revoked_at": None, "revoked_by": None, "revocation_reason": None,
    }


def number_and_announce(conn: Connection, settings: Settings, rows: list[dict]) -> None:
    """Give freshly inserted certificates their numbers and stage their `earned` statements."""
    by_series: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["issued_at"], r["registration"])):
        by_series[(row["programme_code"].upper(), row["issued_at"].year)].append(row)
    for (code, year), series in sorted(by_series.items()):
        for row, sequence in zip(series, allocate_numbers(conn, code, year, len(series)), strict=True):
            row["number"] = certificate_number(code, year, sequence)
    conn.execute(t.certificates.update().where(t.certificates.c.id == sa.bindparam("cid"))
                 .values(number=sa.bindparam("num")), [{"cid": r["id"], "num": r["number"]} for r in rows])
    outbox.append(conn, t.outbox, settings.own_topic, [statements.earned(r, settings.activity_base) for r in rows])


def allocate_numbers(conn: Connection, programme_code: str, year: int, count: int) -> list[int]:
    """The next `count` numbers of a series. The UPDATE takes the row lock (PostgreSQL) or
    runs under SQLite's single writer, so concurrent issuers never share a number."""
    seq = t.certificate_sequences
    where = (seq.c.programme_code == programme_code, seq.c.year == year)
    db.insert_ignoring_duplicates(conn, seq, [{"programme_code": programme_code, "year": year, "last_number": 0}],
                                  ["programme_code", "year"])
    conn.execute(seq.update().where(*where).values(last_number=seq.c.last_number + count))
    last = conn.scalar(sa.select(seq.c.last_number).where(*where))
    return list(range(last - count + 1, last + 1))


def undo_if_withdrawn_before_qualifying(conn: Connection, settings: Settings, withdrawals: list[dict]) -> int:
    """A withdrawal can reach us after the facts that made the rule hold (another topic,
    another partition). If it happened before the learner qualified, the rule never held:
    the rule's own certificate is revoked. Decided from the stored certificate and the
    withdrawal statement alone, so a replay reaches the same verdict (and finds it done).
    A rebuild revokes nothing: what the live run revoked is revoked already."""
    if replaying(conn):
        return 0
    undone = 0
    c = t.certificates
    for w in withdrawals:
        row = conn.execute(sa.select(c).where(c.c.programme_id == w["programme_id"],
                                              c.c.learner_key == w["learner_key"], c.c.issue_no == 1)).first()
        if row is None or not repository.certificate_from_row(row).withdrawn_before_qualifying(w["withdrawn_at"]):
            continue
        reason = "enrolment withdrawn before the programme was completed"
        undone += _revoke(conn, settings, row._asdict(), reason, SYSTEM)
    return undone


def _revoke(conn: Connection, settings: Settings, cert: dict, reason: str, by: str) -> int:
    now = xapi.utc_now()
    c = t.certificates
    updated = conn.execute(c.update().where(c.c.id == cert["id"], c.c.revoked_at.is_(None))
                           .values(revoked_at=now, revoked_by=by, revocation_reason=reason)).rowcount
    if updated:
        outbox.append(conn, t.outbox, settings.own_topic,
                      [statements.revoked(cert, settings.activity_base, by, now, reason)])
    return updated


# --- operator commands -------------------------------------------------------------------------

class CertificationService:
    """The operators' write side: one method per command, one transaction per method."""

    def __init__(self, settings: Settings, engine: Engine, clock=xapi.utc_now):
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def revoke(self, certificate_id: str, reason: str, operator: str) -> None:
        with self.engine.begin() as conn:
            row = repository.get_certificate_row(conn, certificate_id)
            repository.certificate_from_row(row).revoke(reason, operator, self.clock())  # the rule's checks
            if not _revoke(conn, self.settings, row._asdict(), reason.strip(), operator):
                raise Conflict("the certificate is already revoked")

    def reissue(self, certificate_id: str, operator: str) -> str:
        """A new certificate (new number, new verification code) after a revocation."""
        try:
            with self.engine.begin() as conn:
                old = repository.get_certificate_row(conn, certificate_id)
                issues = repository.issues_of(conn, old.programme_id, old.learner_key)
                issue_no = next_issue_no([repository.certificate_from_row(r) for r in issues])
                # The learner's current details, if the read model has them; else the old certificate's.
                current = conn.execute(sa.select(t.learner_enrolments).where(
                    t.learner_enrolments.c.registration == old.registration)).first()
                row = certificate_row(current or _as_enrolment(old), old.qualified_at, issue_no=issue_no,
                                      issued_at=self.clock(), issued_by=operator)
                conn.execute(t.certificates.insert().values(row))
                number_and_announce(conn, self.settings, [row])
        except IntegrityError:  # a concurrent re-issue got there first
            raise Conflict("the certificate was re-issued concurrently") from None
        return row["id"]

    def set_rules(self, programme_id: str, grace_days: int, operator: str) -> dict:
        """Store a programme's issuance rules and apply them at once to the learners not yet
        certified (in progress, or late under the old rules); certificates already issued
        stand. Future decisions use the new rules."""
        rules = Rules(grace_days=grace_days)
        now = self.clock()
        with self.engine.begin() as conn:
            db.upsert(conn, t.programme_rules, [{"programme_id": programme_id, "grace_days": rules.grace_days,
                                                 "updated_at": now, "updated_by": operator}], ["programme_id"])
            e = t.learner_enrolments
            pending = conn.scalars(sa.select(e.c.learner_key).where(
                e.c.programme_id == programme_id, e.c.standing.in_([IN_PROGRESS, LATE]))).all()
            decide_for(conn, self.settings, pending)
        return {"programme_id": programme_id, "grace_days": rules.grace_days, "updated_at": now,
                "updated_by": operator}


def _as_enrolment(cert_row):
    """A certificate row read as the enrolment it was issued for (for re-issuing)."""
    return SimpleNamespace(**cert_row._asdict(), name=cert_row.learner_name)
