"""Certification's operator commands: revoking, re-issuing, setting a programme's rules.
Each writes its state and its statements through one unit of work (shared.unit_of_work),
so they commit together or not at all (docs/architecture.md, Writing). Issuing itself is
the rule's, not an operator's: see issuance.py."""
from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from services.certification import issuance
from services.certification.domain import IN_PROGRESS, LATE, Rules, next_issue_no
from services.certification.repository import CertificationRepository, certificate_from_row
from shared import xapi
from shared.errors import Conflict
from shared.unit_of_work import UnitOfWork


class CertificationCommands:
    """The operators' write side: one method per command, one unit of work per method."""

    def __init__(self, new_uow: Callable[[], UnitOfWork[CertificationRepository]], activity_base: str,
                 clock=xapi.utc_now):
        self.new_uow = new_uow
        self.activity_base = activity_base
        self.clock = clock

    def revoke(self, certificate_id: str, reason: str, operator: str) -> None:
        now = self.clock()
        with self.new_uow() as uow:
            row = uow.repo.certificate(certificate_id)
            certificate_from_row(row).revoke(reason, operator, now)  # the rule's checks
            if not issuance.revoke(uow, self.activity_base, row._asdict(), reason.strip(), operator, now):
                raise Conflict("the certificate is already revoked")
            uow.commit()

    def reissue(self, certificate_id: str, operator: str) -> str:
        """A new certificate (new number, new verification code) after a revocation."""
        with self.new_uow() as uow:
            old = uow.repo.certificate(certificate_id)
            issues = uow.repo.issues_of(old.programme_id, old.learner_key)
            issue_no = next_issue_no([certificate_from_row(r) for r in issues])
            # The learner's current details, if the read model has them; else the old certificate's.
            current = uow.repo.enrolment(old.registration)
            row = issuance.certificate_row(current or _as_enrolment(old), old.qualified_at, issue_no=issue_no,
                                           issued_at=self.clock(), issued_by=operator)
            uow.repo.add_certificate(row)  # a concurrent re-issue makes this a Conflict
            issuance.number_and_announce(uow, self.activity_base, [row])
            uow.commit()
        return row["id"]

    def set_rules(self, programme_id: str, grace_days: int, operator: str) -> dict:
        """Store a programme's issuance rules and apply them at once to the learners not yet
        certified (in progress, or late under the old rules); certificates already issued
        stand. Future decisions use the new rules."""
        rules = Rules(grace_days=grace_days)
        now = self.clock()
        with self.new_uow() as uow:
            uow.repo.save_rules(programme_id, rules, now, operator)
            pending = uow.repo.learners_with_standing(programme_id, [IN_PROGRESS, LATE])
            issuance.decide_for(uow, self.activity_base, pending)
            uow.commit()
        return {"programme_id": programme_id, "grace_days": rules.grace_days, "updated_at": now,
                "updated_by": operator}


def _as_enrolment(cert_row):
    """A certificate row read as the enrolment it was issued for (for re-issuing)."""
    return SimpleNamespace(**cert_row._asdict(), name=cert_row.learner_name)
