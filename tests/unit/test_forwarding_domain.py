"""The forwarding rules on their own: the filter, what a target's answer means, the
splitting of a refused batch, the backoff and the breaker (services/forwarding/domain.py)."""
from __future__ import annotations

import pytest

from services.forwarding import projections
from services.forwarding.domain import (
    Backoff,
    Breaker,
    Facts,
    Filter,
    Target,
    Verdict,
    check_url,
    halves,
    outgoing,
    statement_activities,
    verdict,
)
from shared.errors import DomainError

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
M1 = "https://content.example.org/m1"


def facts(verb=COMPLETED, activities=(M1,), cohorts=(), agencies=(), event_type="lrs.statement") -> Facts:
    return Facts(event_type, verb, frozenset(activities), frozenset(cohorts), frozenset(agencies))


def test_an_empty_filter_forwards_everything():
    assert Filter().matches(facts()) and Filter.of(None).matches(facts(event_type=None))


def test_lists_are_and_across_or_within():
    f = Filter(verbs=(COMPLETED, "v2"), agencies=("Revenue",))
    assert f.matches(facts(agencies=("Revenue", "Tax")))
    assert not f.matches(facts(agencies=("Tax",)))
    assert not f.matches(facts(verb="v3", agencies=("Revenue",)))
    assert Filter(activities=(M1,)).matches(facts(activities=("other", M1)))
    assert not Filter(cohorts=("c1",)).matches(facts(cohorts=()))


def test_an_lms_statement_without_a_type_counts_as_lrs_statement():
    assert Filter(event_types=("lrs.statement",)).matches(facts(event_type=None))
    assert not Filter(event_types=("enrolment.registered",)).matches(facts(event_type=None))


def test_the_filter_round_trips_and_says_when_it_needs_the_catalog():
    f = Filter.of({"verbs": ["a"], "cohorts": ["c"]})
    assert Filter.of(f.as_dict()) == f and f.needs_catalog and not Filter(verbs=("a",)).needs_catalog


def test_activities_are_the_object_and_every_context_activity():
    s = {"object": {"id": M1}, "context": {"contextActivities": {"parent": [{"id": "p"}], "grouping": {"id": "g"}}}}
    assert statement_activities(s) == {M1, "p", "g"}
    assert statement_activities({"object": {"objectType": "Agent", "mbox": "mailto:x@y"}}) == set()


def test_a_cohort_in_the_grouping_names_cohort_and_agency_without_the_catalog():
    s = {"id": "x", "actor": {"mbox": "mailto:a@b"}, "verb": {"id": COMPLETED}, "object": {"id": M1},
         "context": {"contextActivities": {"grouping": [{"id": "https://x/cohorts/c1", "definition": {
             "extensions": {"https://learnstream.dev/xapi/extensions/cohort": {"id": "c1", "agency": "Revenue"}}}}]}}}
    (found,) = projections.facts(None, [("enrolment.registered", s)])
    assert found.cohorts == {"c1"} and found.agencies == {"Revenue"}


@pytest.mark.parametrize("status,size,expected", [
    (200, 10, Verdict.DELIVERED), (204, 1, Verdict.DELIVERED),
    (409, 1, Verdict.DELIVERED),   # that id is stored already
    (409, 5, Verdict.SPLIT),       # one of them is: nothing of the batch was stored
    (400, 5, Verdict.SPLIT), (400, 1, Verdict.REFUSED), (413, 3, Verdict.SPLIT), (403, 1, Verdict.REFUSED),
    (429, 1, Verdict.RETRY), (503, 7, Verdict.RETRY), (500, 1, Verdict.RETRY), (None, 3, Verdict.RETRY),
    (401, 1, Verdict.RETRY), (404, 1, Verdict.RETRY), (408, 2, Verdict.RETRY), (302, 1, Verdict.RETRY),
])
def test_what_an_answer_means(status, size, expected):
    assert verdict(status, size) is expected


def test_halves_keep_order_and_lose_nothing():
    for n in range(2, 9):
        first, second = halves(list(range(n)))
        assert first and second and first + second == list(range(n))


def test_backoff_doubles_up_to_the_cap_and_resets():
    b = Backoff(cap=4, first=0.5)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    b.reset()
    assert b.next_delay() == 0.5


def test_the_breaker_counts_refusals_in_a_row_across_batches():
    b = Breaker(limit=3)
    assert not b.count([True, True])
    assert not b.count([False, True, True, True])
    assert b.count([True])


def test_what_the_lrs_sets_is_not_sent():
    s = {"id": "x", "actor": {}, "verb": {}, "object": {}, "stored": "t", "version": "1.0.3", "timestamp": "t",
         "authority": {"mbox": "mailto:a@b"}}
    assert outgoing(s) == {"id": "x", "actor": {}, "verb": {}, "object": {}, "timestamp": "t",
                           "authority": {"mbox": "mailto:a@b"}}


def test_urls_are_checked_and_credentials_kept_out_of_them():
    assert check_url("https://lrs.example.org/xapi/") == "https://lrs.example.org/xapi"
    for bad in ("ftp://x/y", "lrs.example.org", "https://user:pw@lrs.example.org/xapi", "https://x/xapi?a=1"):
        with pytest.raises(DomainError) as raised:
            check_url(bad)
        assert raised.value.field == "url"


def test_a_target_never_shows_its_password():
    target = Target("id", "ministry", "https://x/xapi", "1.0.3", username="key", password="s3cret")
    assert "s3cret" not in repr(target) and target.statements_url == "https://x/xapi/statements"
