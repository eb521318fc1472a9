"""Certification rules, in plain Python (no Flask, SQLAlchemy or Kafka).

`decide` is the issuance rule: facts in, decision out. It is a function of the set of
facts, never of the order they arrived in nor of the clock, so a live consumer, a second
instance and a replay all reach the same decision from the same facts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.errors import Conflict, DomainError
from shared.vocabulary import REVOKED, VALID

# What a fact says about an activity.
COMPLETED = "completed"  # a module: completed, or passed/satisfied as some players report it
PASSED = "passed"        # the final test (or a module whose player reports passed)

# A learner's standing in a programme.
QUALIFIED = "qualified"
IN_PROGRESS = "in_progress"
# Not qualified by the deadline (and grace). `decide` says so when a requirement was only
# achieved after it; the read side also says so of a learner still in progress once the
# clock has passed it (queries.standings), since no statement ever arrives to say it.
LATE = "late"
WITHDRAWN = "withdrawn"  # withdrawn before qualifying
STANDINGS = (QUALIFIED, IN_PROGRESS, LATE, WITHDRAWN)

MAX_GRACE_DAYS = 366


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment statements told us: the programme's requirements and the window."""

    registration: str
    required_modules: tuple[str, ...]
    final_test: str
    deadline: datetime | None
    withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class Achievement:
    """One statement saying the learner completed or passed an activity, at its timestamp."""

    activity_id: str
    kind: str
    at: datetime
    statement_id: str = ""


@dataclass(frozen=True)
class Rules:
    """The service's own issuance rules for a programme (PUT /programmes/<id>/rules)."""

    grace_days: int = 0

    def __post_init__(self):
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise DomainError(f"the grace period is 0 to {MAX_GRACE_DAYS} days", "grace_days")


@dataclass(frozen=True)
class Decision:
    standing: str
    # When the rule came to hold: the latest of the deciding statements' timestamps.
    qualified_at: datetime | None = None
    missing: tuple[str, ...] = ()

    @property
    def qualifies(self) -> bool:
        return self.standing == QUALIFIED


def _earliest(achievements, activity_id: str, kinds: tuple[str, ...], cutoff: datetime | None):
    """(earliest time within the window, whether there is any at all)."""
    times = [a.at for a in achievements if a.activity_id == activity_id and a.kind in kinds]
    within = [t for t in times if cutoff is None or t <= cutoff]
    return (min(within) if within else None), bool(times)


def decide(enrolment: Enrolment, achievements: list[Achievement] | tuple[Achievement, ...],
           rules: Rules = Rules()) -> Decision:
    """The programme's rule: every required module completed and the final test passed,
    both no later than the deadline plus the grace period, and the enrolment not
    withdrawn before that moment.

    A module counts as completed by a `completed` statement or by `passed`/`satisfied`
    (kind COMPLETED or PASSED); the final test only by a pass. The earliest qualifying
    statement of each requirement counts, so a later repeat changes nothing. A learner
    who qualified and then withdrew keeps the certificate: they had earned it.
    """
    cutoff = enrolment.deadline + timedelta(days=rules.grace_days) if enrolment.deadline else None
    done: list[datetime] = []
    missing: list[str] = []
    late = False
    requirements = [(m, (COMPLETED, PASSED)) for m in enrolment.required_modules]
    requirements.append((enrolment.final_test, (PASSED,)))
    for activity_id, kinds in requirements:
        at, any_at_all = _earliest(achievements, activity_id, kinds, cutoff)
        if at is None:
            missing.append(activity_id)
            late = late or any_at_all
        else:
            done.append(at)
    qualified_at = max(done) if not missing and done else None
    withdrawn = enrolment.withdrawn_at
    if withdrawn is not None and (qualified_at is None or withdrawn <= qualified_at):
        return Decision(WITHDRAWN, None, tuple(missing))
    if qualified_at is not None:
        return Decision(QUALIFIED, qualified_at)
    return Decision(LATE if late else IN_PROGRESS, None, tuple(missing))


# --- certificates ---------------------------------------------------------------------------

SYSTEM = "system"  # issued_by / revoked_by when the rule, not an operator, acted


@dataclass(frozen=True)
class Certificate:
    id: str
    programme_id: str
    learner_key: str
    issue_no: int
    issued_at: datetime
    number: str | None = None
    issued_by: str = SYSTEM
    qualified_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revocation_reason: str | None = None

    @property
    def status(self) -> str:
        return REVOKED if self.revoked_at else VALID

    def revoke(self, reason: str, by: str, at: datetime) -> Certificate:
        if self.revoked_at is not None:
            raise Conflict("the certificate is already revoked")
        if not reason or not reason.strip():
            raise DomainError("give the reason for revoking", "reason")
        return replace(self, revoked_at=at, revoked_by=by, revocation_reason=reason.strip())

    def withdrawn_before_qualifying(self, withdrawn_at: datetime) -> bool:
        """A withdrawal that arrived after the certificate was issued but happened before
        the learner qualified: the rule did not hold, so the issue is undone. Only the
        rule's own first issue is undone this way; an operator's re-issue stands."""
        return (self.revoked_at is None and self.issued_by == SYSTEM and self.issue_no == 1
                and self.qualified_at is not None and withdrawn_at <= self.qualified_at)


def next_issue_no(issues: list[Certificate]) -> int:
    """Re-issuing: allowed only when every earlier issue is revoked."""
    if not issues:
        raise Conflict("the learner has no certificate to re-issue")
    if any(c.revoked_at is None for c in issues):
        raise Conflict("the learner holds a valid certificate; revoke it before re-issuing")
    return max(c.issue_no for c in issues) + 1


def certificate_number(programme_code: str, year: int, sequence: int) -> str:
    """Human-readable: programme code, year of issue, per-programme-and-year sequence."""
    return f"{programme_code.upper()}-{year}-{sequence:06d}"
