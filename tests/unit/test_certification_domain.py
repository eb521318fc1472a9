"""The issuance rule, facts in and decision out: each condition missing in turn, every
arrival order, deadlines, grace periods and withdrawals."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.certification.domain import (
    COMPLETED,
    IN_PROGRESS,
    LATE,
    PASSED,
    QUALIFIED,
    SYSTEM,
    WITHDRAWN,
    Achievement,
    Certificate,
    Enrolment,
    Rules,
    certificate_number,
    decide,
    next_issue_no,
)
from shared.errors import Conflict, DomainError

DEADLINE = datetime(2026, 11, 12, tzinfo=UTC)
M1, M2, TEST = "https://x.test/m/1", "https://x.test/m/2", "https://x.test/final"


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def enrolment(withdrawn_at=None, deadline=DEADLINE) -> Enrolment:
    return Enrolment("reg-1", (M1, M2), TEST, deadline, withdrawn_at)


FULL = [Achievement(M1, COMPLETED, at(3), "a"), Achievement(M2, COMPLETED, at(5), "b"),
        Achievement(TEST, PASSED, at(6), "c")]


def test_all_modules_and_the_test_in_time_qualify_at_the_last_of_them():
    decision = decide(enrolment(), FULL)
    assert decision.standing == QUALIFIED and decision.qualifies
    assert decision.qualified_at == at(6)


@pytest.mark.parametrize("left_out", range(3))
def test_each_requirement_missing_in_turn_is_not_enough(left_out):
    facts = [f for i, f in enumerate(FULL) if i != left_out]
    decision = decide(enrolment(), facts)
    assert decision.standing == IN_PROGRESS and not decision.qualifies
    assert decision.missing == (FULL[left_out].activity_id,)


def test_nothing_yet_is_in_progress():
    assert decide(enrolment(), []).missing == (M1, M2, TEST)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_arrival_order_decides_the_same(order):
    facts = FULL + [Achievement(M1, COMPLETED, at(9), "repeat")]
    seen = []
    for i in order:
        seen.append(facts[i])
        decision = decide(enrolment(), list(seen))
    assert decision.standing == QUALIFIED and decision.qualified_at == at(6)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_arrival_order_of_a_withdrawal_decides_the_same(order):
    # The withdrawal is a fact like the others: before qualifying, it wins in any order.
    withdrawal_at = at(4)
    facts = list(FULL) + ["withdrawal"]
    seen, withdrawn = [], None
    for i in order:
        if facts[i] == "withdrawal":
            withdrawn = withdrawal_at
        else:
            seen.append(facts[i])
    assert decide(enrolment(withdrawn_at=withdrawn), seen).standing == WITHDRAWN


def test_passed_or_satisfied_count_for_modules_but_only_a_pass_for_the_test():
    facts = [Achievement(M1, PASSED, at(3)), Achievement(M2, COMPLETED, at(4)), Achievement(TEST, COMPLETED, at(5))]
    assert decide(enrolment(), facts).missing == (TEST,)
    assert decide(enrolment(), facts + [Achievement(TEST, PASSED, at(7))]).qualifies


def test_a_completion_after_the_deadline_is_late():
    facts = FULL[:1] + [Achievement(M2, COMPLETED, at(13)), FULL[2]]
    decision = decide(enrolment(), facts)
    assert decision.standing == LATE and decision.missing == (M2,)


def test_a_pass_after_the_deadline_is_late():
    facts = FULL[:2] + [Achievement(TEST, PASSED, at(12, 0) + timedelta(seconds=1))]
    assert decide(enrolment(), facts).standing == LATE


def test_exactly_at_the_deadline_is_in_time():
    facts = FULL[:2] + [Achievement(TEST, PASSED, DEADLINE)]
    assert decide(enrolment(), facts).qualified_at == DEADLINE


def test_an_early_completion_counts_even_if_repeated_late():
    facts = FULL + [Achievement(M2, COMPLETED, at(20))]
    assert decide(enrolment(), facts).qualified_at == at(6)


def test_the_grace_period_extends_the_deadline():
    facts = FULL[:2] + [Achievement(TEST, PASSED, at(13))]
    assert decide(enrolment(), facts, Rules(grace_days=1)).standing == LATE
    assert decide(enrolment(), facts, Rules(grace_days=2)).qualified_at == at(13)


def test_withdrawn_before_qualifying_never_qualifies():
    assert decide(enrolment(withdrawn_at=at(5, 13)), FULL).standing == WITHDRAWN
    assert decide(enrolment(withdrawn_at=at(6)), FULL).standing == WITHDRAWN  # the same instant: withdrawn
    assert decide(enrolment(withdrawn_at=at(1)), []).standing == WITHDRAWN


def test_withdrawn_after_qualifying_keeps_what_was_earned():
    decision = decide(enrolment(withdrawn_at=at(8)), FULL)
    assert decision.standing == QUALIFIED and decision.qualified_at == at(6)


def test_no_deadline_known_means_no_window():
    assert decide(enrolment(deadline=None), FULL).qualifies


def test_activities_of_other_programmes_do_not_count():
    facts = [Achievement("https://x.test/other", COMPLETED, at(3))] + FULL[1:]
    assert decide(enrolment(), facts).missing == (M1,)


def test_grace_days_are_bounded():
    with pytest.raises(DomainError):
        Rules(grace_days=-1)
    with pytest.raises(DomainError):
        Rules(grace_days=400)


def test_certificate_numbers_read_code_year_sequence():
    assert certificate_number("ds1", 2026, 123) == "DS1-2026-000123"


def _cert(**kw) -> Certificate:
    values = dict(id="c1", programme_id="p", learner_key="k", issue_no=1, issued_at=at(6), qualified_at=at(6))
    return Certificate(**(values | kw))


def test_revoking_needs_a_reason_and_happens_once():
    with pytest.raises(DomainError):
        _cert().revoke("  ", "ops", at(9))
    revoked = _cert().revoke("fraud", "ops", at(9))
    assert revoked.status == "revoked" and revoked.revocation_reason == "fraud"
    with pytest.raises(Conflict):
        revoked.revoke("again", "ops", at(10))


def test_reissue_only_after_every_issue_is_revoked():
    with pytest.raises(Conflict):
        next_issue_no([_cert()])
    with pytest.raises(Conflict):
        next_issue_no([])
    assert next_issue_no([_cert(revoked_at=at(9)), _cert(issue_no=2, revoked_at=at(10))]) == 3


def test_only_the_rules_own_issue_is_undone_by_an_earlier_withdrawal():
    assert _cert(issued_by=SYSTEM).withdrawn_before_qualifying(at(5))
    assert _cert(issued_by=SYSTEM).withdrawn_before_qualifying(at(6))
    assert not _cert(issued_by=SYSTEM).withdrawn_before_qualifying(at(7))
    assert not _cert(issue_no=2, issued_by="ops").withdrawn_before_qualifying(at(5))
    assert not _cert(revoked_at=at(8)).withdrawn_before_qualifying(at(5))
