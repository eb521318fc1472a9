"""What an AU may send in a cmi5 session (cmi5 spec 9, 10): each rule refused by name."""
from __future__ import annotations

import copy

import pytest

from services.progress.cmi5 import terms as c
from services.progress.cmi5.rules import Progress, Refused, Session, judge

ACTOR = {"objectType": "Agent", "account": {"homePage": "https://example.org", "name": "ada"}}
SESSION = Session(id="s-1", actor=ACTOR, registration="5f8bd1d5-3f2c-4fd4-a5d9-6c4d0f6b8f31",
                  activity_id="https://lms.example/au/0", mastery_score=0.8)
STARTED = Progress(initialized=True, preferences_read=True)
READY = Progress(preferences_read=True)  # launched, learner preferences read


def st(verb=c.INITIALIZED, moveon=False, result=None, **extensions) -> dict:
    categories = [{"id": c.CATEGORY_CMI5}] + ([{"id": c.CATEGORY_MOVEON}] if moveon else [])
    statement = {"id": "0b5cf7e8-3a0e-4b4e-9fd5-1f8c0f4a9d11", "timestamp": "2026-12-02T04:00:00.000Z",
                 "actor": copy.deepcopy(ACTOR), "verb": {"id": verb},
                 "object": {"id": SESSION.activity_id},
                 "context": {"registration": SESSION.registration,
                             "contextActivities": {"category": categories},
                             "extensions": {c.EXT_SESSION: SESSION.id, **extensions}}}
    if result is not None:
        statement["result"] = result
    return statement


def passed(scaled=0.9, **result):
    return st(c.PASSED, True, {"success": True, "duration": "PT1S", "score": {"scaled": scaled}, **result},
              **{c.EXT_MASTERY: 0.8})


def failed(scaled=0.5, **result):
    return st(c.FAILED, True, {"success": False, "duration": "PT1S", "score": {"scaled": scaled}, **result},
              **{c.EXT_MASTERY: 0.8})


def completed(**result):
    return st(c.COMPLETED, True, {"completion": True, "duration": "PT1S", **result})


def rule(statement, progress=STARTED, session=SESSION, method="POST") -> str:
    with pytest.raises(Refused) as caught:
        judge(statement, session, progress, method=method)
    return caught.value.requirement


def without(statement, *path):
    *parents, last = path
    target = statement
    for key in parents:
        target = target[key]
    del target[last]
    return statement


def test_a_session_from_initialized_to_terminated():
    assert rule(st(), Progress()) == "11.0.0.0-3"
    progress = judge(st(), SESSION, READY)
    progress = judge(st("http://adlnet.gov/expapi/verbs/experienced"), SESSION, progress)
    progress = judge(completed(), SESSION, progress)
    progress = judge(passed(), SESSION, progress)
    progress = judge(st(c.TERMINATED, result={"duration": "PT2S"}), SESSION, progress)
    assert progress == Progress(initialized=True, terminated=True, completed=True, passed=True, judged=True,
                                preferences_read=True)


@pytest.mark.parametrize(("statement", "progress", "requirement"), [
    (st("http://adlnet.gov/expapi/verbs/experienced"), Progress(), "9.3.0.0-4"),  # before initialized
    (st(), STARTED, "9.3.2.0-3"),  # initialized twice
    (st("http://adlnet.gov/expapi/verbs/experienced"), Progress(initialized=True, terminated=True), "9.3.0.0-5"),
    (completed(), Progress(initialized=True, completed=True), "9.3.0.0-2"),
    (passed(), Progress(initialized=True, passed=True), "9.3.0.0-2"),
    (failed(), Progress(initialized=True, passed=True), "9.3.0.0-8"),
])
def test_sequence_rules(statement, progress, requirement):
    assert rule(statement, progress) == requirement


def test_statement_shape_rules():
    assert rule(without(st(), "id")) == "9.1.0.0-1"
    judge(without(st(), "id"), SESSION, READY, method="PUT")  # PUT names it
    assert rule(without(st(), "timestamp")) == "9.7.0.0-1"
    late = st()
    late["timestamp"] = "2026-12-02T04:00:00-06:00"
    assert rule(late) == "9.7.0.0-2"
    group = passed()
    group["actor"]["objectType"] = "Group"
    assert rule(group) == "9.2.0.0-2"
    mbox = passed()
    mbox["actor"] = {"mbox": "mailto:ada@example.org"}
    assert rule(mbox) == "9.2.0.0-2"
    stranger = passed()
    stranger["actor"]["account"]["name"] = "eve"
    assert rule(stranger) == "9.2.0.0-3"
    assert rule(without(passed(), "context")) == "9.6.0.0-1"
    assert rule(without(passed(), "context", "registration")) == "9.6.1.0-1"
    assert rule(without(st(), "context", "extensions", c.EXT_SESSION)) == "9.6.3.1-4"
    other = passed()
    other["object"]["id"] = "https://example.org/not/the/au"
    assert rule(other) == "8.1.5.0-6"
    assert rule(st(c.VOIDED)) == "6.3.0.0-1"
    uncategorised = passed()
    uncategorised["context"]["contextActivities"]["category"] = [{"id": c.CATEGORY_MOVEON}]
    assert rule(uncategorised) == "9.6.2.1-1"


def test_category_rules():
    for statement in (completed(), passed(), failed()):
        statement["context"]["contextActivities"]["category"].pop()
        assert rule(statement) == "9.6.2.2-1"
    assert rule(st("http://adlnet.gov/expapi/verbs/experienced", moveon=True)) == "9.6.2.2-2"
    assert rule(st(c.TERMINATED, moveon=True, result={"duration": "PT1S"})) == "9.6.2.2-2"


def test_result_rules():
    assert rule(completed(success=True)) == "9.5.2.0-3"
    assert rule(completed(completion=False)) == "9.5.3.0-1"
    assert rule(completed(score={"scaled": 0.5})) == "9.5.1.0-2"
    assert rule(without(completed(), "result", "duration")) == "9.5.4.1-2"
    assert rule(st(c.TERMINATED)) == "9.5.4.1-1"
    assert rule(passed(success=False)) == "9.5.2.0-1"
    assert rule(passed(completion=True)) == "9.5.3.0-2"
    assert rule(without(passed(), "result", "duration")) == "9.5.4.1-3"
    assert rule(failed(success=True)) == "9.5.2.0-2"
    assert rule(without(failed(), "result", "duration")) == "9.5.4.1-4"
    assert rule(passed(score={"raw": 5, "max": 10})) == "9.5.1.0-3"


def test_mastery_score_rules():
    assert rule(passed(0.79)) == "9.3.4.0-2"
    assert rule(failed(0.8)) == "9.3.5.0-2"
    assert rule(without(passed(), "context", "extensions", c.EXT_MASTERY)) == "9.6.3.2-2"
    wrong = passed()
    wrong["context"]["extensions"][c.EXT_MASTERY] = 0.5
    assert rule(wrong) == "9.6.3.2-2"
    unscored = without(without(passed(), "result", "score"), "context", "extensions", c.EXT_MASTERY)
    assert judge(unscored, SESSION, STARTED).passed  # no score: nothing to judge against


@pytest.mark.parametrize(("mode", "requirement"), [("Browse", "10.2.2.0-2"), ("Review", "10.2.2.0-3")])
def test_only_normal_launches_report_completion_or_success(mode, requirement):
    browsing = Session(**{**SESSION.__dict__, "launch_mode": mode})
    for statement in (completed(), passed(), failed()):
        assert rule(statement, session=browsing) == requirement
    judge(st(c.TERMINATED, result={"duration": "PT1S"}), browsing, STARTED)


def test_passed_or_failed_once_per_session_failed_again_in_the_next():
    after_failed = judge(failed(), SESSION, STARTED)
    assert rule(failed(), after_failed) == "9.3.0.0-2"
    assert rule(passed(), after_failed) == "9.3.0.0-3"
    next_session = Progress(initialized=True, failed=True, preferences_read=True)
    assert judge(passed(), SESSION, next_session).passed
