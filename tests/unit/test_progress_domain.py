from datetime import UTC, datetime, timedelta

import pytest

from services.progress import domain

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
MODULES = ["https://c.test/m1", "https://c.test/m2", "https://c.test/m3"]
FINAL = "https://c.test/final"


def activity(at, completed=True, seconds=60.0):
    return domain.Activity(at, at, at if completed else None, seconds)


@pytest.mark.parametrize("text, seconds", [
    ("PT1H2M3.5S", 3723.5), ("PT90S", 90), ("P1D", 86400), ("PT0S", 0), (None, 0), ("garbage", 0), ("P1DT1M", 86460),
])
def test_duration_seconds(text, seconds):
    assert domain.duration_seconds(text) == seconds


def test_progress_counts_only_required_modules_and_finishes_on_the_later_of_modules_and_pass():
    acts = {MODULES[0]: activity(T0), MODULES[1]: activity(T0 + timedelta(hours=1)),
            MODULES[2]: activity(T0 + timedelta(hours=2)), "https://c.test/optional": activity(T0 - timedelta(days=1))}
    passed = domain.Verdict(domain.PASSED, 1, 0.8, T0 + timedelta(hours=1, minutes=30))
    progress = domain.summarise(MODULES, FINAL, acts, passed)
    assert (progress.modules_completed, progress.modules_required, progress.percent) == (3, 3, 100.0)
    assert progress.modules_completed_at == T0 + timedelta(hours=2)
    assert progress.finished_at == T0 + timedelta(hours=2)
    assert progress.first_activity_at == T0  # the optional activity is not part of the programme
    assert progress.time_spent_seconds == 180


def test_not_finished_without_a_pass_or_with_a_module_missing():
    acts = {m: activity(T0) for m in MODULES[:2]}
    acts[MODULES[2]] = activity(T0, completed=False)
    passed = domain.Verdict(domain.PASSED, 1, 0.9, T0)
    assert domain.summarise(MODULES, FINAL, acts, passed).finished_at is None
    assert domain.summarise(MODULES, FINAL, acts, passed).percent == 66.7
    all_done = {m: activity(T0) for m in MODULES}
    assert domain.summarise(MODULES, FINAL, all_done, domain.Verdict(domain.FAILED, 2, 0.5, T0)).finished_at is None


def test_verdicts_in_any_order():
    fail1, fail2, passed = (False, 0.4, T0), (False, 0.6, T0 + timedelta(hours=1)), (True, 0.8, T0 + timedelta(hours=2))
    assert domain.merge_verdicts([]) == domain.Verdict(domain.NOT_ATTEMPTED)
    assert domain.merge_verdicts([fail2, fail1]) == domain.Verdict(domain.FAILED, 2, 0.6, T0 + timedelta(hours=1))
    for order in ([fail1, fail2, passed], [passed, fail2, fail1], [fail2, passed, fail1]):
        assert domain.merge_verdicts(order) == domain.Verdict(domain.PASSED, 3, 0.8, T0 + timedelta(hours=2))


def test_overdue_is_decided_by_the_clock():
    deadline = T0 + timedelta(days=10)
    assert not domain.is_overdue("enrolled", deadline, None, deadline - timedelta(seconds=1))
    assert domain.is_overdue("enrolled", deadline, None, deadline + timedelta(seconds=1))
    assert not domain.is_overdue("enrolled", deadline, deadline - timedelta(days=1), deadline + timedelta(days=1))
    assert not domain.is_overdue("withdrawn", deadline, None, deadline + timedelta(days=1))


def test_an_attempt_counts_from_its_start_as_assessment_counts_it():
    assert domain.merge_verdicts([], started={"a1"}) == domain.Verdict(domain.IN_PROGRESS, 1)
    failed = domain.Outcome(False, 0.4, T0, attempt="a1", used=1, allowed=3)
    assert domain.merge_verdicts([failed], started={"a1", "a2"}) == domain.Verdict(domain.IN_PROGRESS, 2, 0.4)


def test_failed_means_out_of_attempts_as_the_result_statement_says():
    first = domain.Outcome(False, 0.4, T0, attempt="a1", used=1, allowed=2)
    second = domain.Outcome(False, 0.6, T0 + timedelta(hours=1), attempt="a2", used=2, allowed=2)
    assert domain.merge_verdicts([first], started={"a1"}) == domain.Verdict(domain.IN_PROGRESS, 1, 0.4)
    for order in ([first, second], [second, first]):
        assert domain.merge_verdicts(order, started={"a1", "a2"}) == domain.Verdict(
            domain.FAILED, 2, 0.6, T0 + timedelta(hours=1))
    # A result that does not say how many attempts are allowed (an LMS's, an older
    # statement of ours) is final, as it always was.
    assert domain.merge_verdicts([(False, 0.3, T0)]) == domain.Verdict(domain.FAILED, 1, 0.3, T0)
