"""The issuance policy: deciding each learner's standing under the rule and issuing the
certificates earned, revoking the rule's own certificate when a withdrawal shows the rule
never held. The projection calls it inside its batch transaction, for the learners a
batch concerns; an operator's rules change calls it for the learners still pending.

It works through a unit of work (shared.unit_of_work): the standings and certificates
through `uow.repo`, the `earned` and `revoked` statements through `uow.publish`, so they
are committed with the state. It never commits: its caller does.
"""
from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable

from services.certification import statements
from services.certification.domain import SYSTEM, Rules, certificate_number, decide
from services.certification.repository import CertificationRepository, certificate_from_row, enrolment_from_row
from shared import db, xapi
from shared.unit_of_work import UnitOfWork

Uow = UnitOfWork[CertificationRepository]

WITHDRAWN_BEFORE_QUALIFYING = "enrolment withdrawn before the programme was completed"


def new_verification_code() -> str:
    """128 random bits, URL-safe: printed on the certificate, never guessable."""
    return secrets.token_urlsafe(16)


def decide_for(uow: Uow, activity_base: str, learner_keys: Iterable[str]) -> int:
    """Re-run the rule for every enrolment of these learners from the facts stored in the
    read model, record each standing, and issue the certificates now earned.

    Returns how many certificates were issued."""
    issued = 0
    for chunk in db.chunks(sorted(set(learner_keys))):
        enrolments = uow.repo.enrolments_of(chunk)
        if not enrolments:
            continue
        facts = uow.repo.achievements_of(chunk)
        rules = uow.repo.rules_for({row.programme_id for row in enrolments})
        changed, earned = [], []
        for row in enrolments:
            decision = decide(enrolment_from_row(row), facts.get(row.learner_key, []),
                              rules.get(row.programme_id, Rules()))
            if (decision.standing, decision.qualified_at) != (row.standing, row.qualified_at):
                changed.append({"registration": row.registration, "standing": decision.standing,
                                "qualified_at": decision.qualified_at})
            if decision.qualifies:
                earned.append((row, decision.qualified_at))
        uow.repo.set_standings(changed)
        issued += issue(uow, activity_base, earned)
    return issued


def issue(uow: Uow, activity_base: str, earned: list) -> int:
    """Issue the rule's certificate (issue 1) to each (enrolment row, qualified_at) that has
    never had one. Inserted with ON CONFLICT DO NOTHING on (programme, learner, issue 1),
    so this is safe against redelivery, replays and a concurrent instance: only rows
    really inserted are numbered and announced. The issue date is the moment the rule
    came to hold (a statement timestamp), so whoever issues it, it reads the same. A
    rebuild issues nothing: the live run issued (and announced) every certificate there is."""
    if not earned or uow.replaying:
        return 0
    already: set[tuple[str, str]] = set()
    for chunk in db.chunks(sorted({row.learner_key for row, _ in earned})):
        already |= uow.repo.certified(chunk)
    rows = [certificate_row(row, qualified_at, issue_no=1, issued_at=qualified_at, issued_by=SYSTEM)
            for row, qualified_at in earned if (row.programme_id, row.learner_key) not in already]
    if not rows:
        return 0
    inserted = uow.repo.add_certificates(rows)
    fresh = [row for row in rows if row["id"] in inserted]
    number_and_announce(uow, activity_base, fresh)
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


def number_and_announce(uow: Uow, activity_base: str, rows: list[dict]) -> None:
    """Give freshly inserted certificates their numbers and announce them (`earned`)."""
    by_series: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["issued_at"], r["registration"])):
        by_series[(row["programme_code"].upper(), row["issued_at"].year)].append(row)
    for (code, year), series in sorted(by_series.items()):
        for row, sequence in zip(series, uow.repo.allocate_numbers(code, year, len(series)), strict=True):
            row["number"] = certificate_number(code, year, sequence)
    uow.repo.set_numbers({r["id"]: r["number"] for r in rows})
    uow.publish(*(statements.earned(r, activity_base) for r in rows))


def undo_if_withdrawn_before_qualifying(uow: Uow, activity_base: str, withdrawals: list[dict]) -> int:
    """A withdrawal can reach us after the facts that made the rule hold (another topic,
    another partition). If it happened before the learner qualified, the rule never held:
    the rule's own certificate is revoked. Decided from the stored certificate and the
    withdrawal statement alone, so a replay reaches the same verdict (and finds it done).
    A rebuild revokes nothing: what the live run revoked is revoked already."""
    if uow.replaying:
        return 0
    undone = 0
    for w in withdrawals:
        row = uow.repo.first_issue(w["programme_id"], w["learner_key"])
        if row is None or not certificate_from_row(row).withdrawn_before_qualifying(w["withdrawn_at"]):
            continue
        undone += revoke(uow, activity_base, row._asdict(), WITHDRAWN_BEFORE_QUALIFYING, SYSTEM)
    return undone


def revoke(uow: Uow, activity_base: str, cert: dict, reason: str, by: str, now=None) -> bool:
    """Revoke a certificate and announce it, unless it is revoked already (then False)."""
    now = now or xapi.utc_now()
    if not uow.repo.revoke(cert["id"], now, by, reason):
        return False
    uow.publish(statements.revoked(cert, activity_base, by, now, reason))
    return True
