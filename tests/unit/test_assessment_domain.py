from datetime import UTC, datetime, timedelta

import pytest

from services.assessment.commands import parse_bank_csv
from services.assessment.domain import (
    BEST,
    FAILED,
    IN_PROGRESS,
    LAST,
    MULTIPLE,
    NOT_ATTEMPTED,
    OPEN,
    PASSED,
    SINGLE,
    SUBMITTED,
    TIMED_OUT,
    TRUE_FALSE,
    Attempt,
    Enrolment,
    FinalTest,
    Forbidden,
    History,
    InvalidBank,
    Outcome,
    build_bank,
    check_can_start,
    draw,
    normalise_answers,
    score,
    summarise,
)
from shared.errors import Conflict, DomainError, NotFound

T0 = datetime(2026, 11, 5, 9, tzinfo=UTC)


def raw_bank(per_topic=4, topics=("security", "data")):
    questions = []
    for topic in topics:
        for i in range(per_topic):
            questions.append({"id": f"{topic}-{i}", "text": f"About {topic}, question {i}?", "type": SINGLE,
                              "topic": topic, "options": ["a", "b", "c"], "correct": "a"})
    return questions


def test_a_valid_bank_builds_questions_of_every_type():
    bank = build_bank([
        {"id": "q1", "text": "Pick one", "type": SINGLE, "options": ["a", "b"], "correct": "b"},
        {"id": "q2", "text": "Pick some", "type": MULTIPLE, "options": ["a", "b", "c"], "correct": ["a", "c"]},
        {"id": "q3", "text": "True?", "type": TRUE_FALSE, "options": None, "correct": True},
    ])
    assert [q.type for q in bank] == [SINGLE, MULTIPLE, TRUE_FALSE]
    assert bank[2].options == ("true", "false") and bank[2].correct == {"true"}
    assert bank[1].public() == {"id": "q2", "text": "Pick some", "type": MULTIPLE, "topic": None,
                                "options": ["a", "b", "c"]}  # no answers


@pytest.mark.parametrize("question, field, words", [
    ({"options": ["a", "b"], "correct": "z"}, "questions[1].correct", "'z' is not one of"),
    ({"options": ["a", "b"], "correct": ["a", "b"]}, "questions[1].correct", "exactly one"),
    ({"options": ["a", "a"], "correct": "a"}, "questions[1].options", "repeat"),
    ({"options": ["a"], "correct": "a"}, "questions[1].options", "at least two"),
    ({"options": ["a", "b"], "correct": 3}, "questions[1].correct", "correct option"),
    ({"id": "q1"}, "questions[1].id", "duplicate question id 'q1'"),
    ({"text": "  first   QUESTION "}, "questions[1].text", "repeats the text"),
])
def test_bank_validation_names_the_question_and_field(question, field, words):
    first = {"id": "q1", "text": "First question", "type": SINGLE, "options": ["a", "b"], "correct": "a"}
    second = {"id": "q2", "text": "Second", "type": SINGLE, "options": ["a", "b"], "correct": "a"} | question
    with pytest.raises(InvalidBank) as caught:
        build_bank([first, second])
    assert field in caught.value.problems
    assert words in " ".join(caught.value.problems[field])


def test_bank_validation_reports_every_problem_at_once():
    bad = [{"id": f"q{i}", "text": f"t{i}", "type": SINGLE, "options": ["a", "b"], "correct": "x"} for i in range(3)]
    with pytest.raises(InvalidBank) as caught:
        build_bank(bad)
    assert set(caught.value.problems) == {"questions[0].correct", "questions[1].correct", "questions[2].correct"}


def test_csv_bank_parses_options_and_reports_lines():
    text = ("id,type,topic,text,options,correct\n"
            "q1,single_choice,security,Pick one,a|b|c,b\n"
            "q2,multiple_choice,data,Pick some,a|b|c,a|c\n"
            "q3,true_false,,Is it?,,false\n")
    bank = build_bank(parse_bank_csv(text))
    assert bank[1].correct == {"a", "c"} and bank[2].correct == {"false"} and bank[2].topic is None
    with pytest.raises(InvalidBank) as caught:
        parse_bank_csv("id,type,text,options,correct\nq1,essay,Write,a|b,a\n")
    assert "CSV line 2" in caught.value.problems["questions[0].type"][0]
    with pytest.raises(DomainError):
        parse_bank_csv("id,text\nq1,x\n")


def final_test(**overrides):
    fields = dict(programme_id="p1", time_limit=timedelta(minutes=30), pass_mark=0.7, max_attempts=2,
                  question_count=4)
    fields.update(overrides)
    return FinalTest(**fields)



@pytest.mark.parametrize("overrides, field", [
    ({"question_count": None}, "question_count"),
    ({"per_topic": (("data", 1),)}, "question_count"),
    ({"time_limit": timedelta(0)}, "time_limit_seconds"),
    ({"pass_mark": 0}, "pass_mark"),
    ({"pass_mark": 1.2}, "pass_mark"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"counting": "worst"}, "counting"),
])
def test_final_test_rules(overrides, field):
    with pytest.raises(DomainError) as caught:
        final_test(**overrides)
    assert caught.value.field == field


def test_drawing_is_deterministic_for_a_seed_and_varies_between_seeds():
    bank = build_bank(raw_bank(per_topic=10))
    first = draw(bank, final_test(question_count=5), seed="attempt-1")
    assert first == draw(bank, final_test(question_count=5), seed="attempt-1")
    assert len({q.id for q in first}) == 5
    papers = {tuple(q.id for q in draw(bank, final_test(question_count=5), seed=f"attempt-{i}")) for i in range(10)}
    assert len(papers) > 1


def test_drawing_by_topic_takes_exactly_the_asked_number_from_each():
    bank = build_bank(raw_bank(per_topic=6))
    paper = draw(bank, final_test(question_count=None, per_topic=(("data", 1), ("security", 3))), seed="s")
    assert sorted(q.topic for q in paper) == ["data", "security", "security", "security"]
    with pytest.raises(DomainError) as caught:
        draw(bank, final_test(question_count=None, per_topic=(("data", 7),)), seed="s")
    assert caught.value.field == "per_topic" and "6 questions on topic 'data'" in caught.value.message
    with pytest.raises(DomainError):
        draw(bank, final_test(question_count=13), seed="s")


QUESTIONS = build_bank([
    {"id": "s", "text": "single", "type": SINGLE, "options": ["a", "b", "c"], "correct": "a"},
    {"id": "m", "text": "multiple", "type": MULTIPLE, "options": ["a", "b", "c", "d"], "correct": ["a", "b"]},
    {"id": "t", "text": "true/false", "type": TRUE_FALSE, "options": None, "correct": False},
    {"id": "u", "text": "unanswered", "type": SINGLE, "options": ["a", "b"], "correct": "b"},
])


@pytest.mark.parametrize("chosen, credit", [
    (["a", "b"], 1.0), (["a"], 0.5), (["a", "c"], 0.0), (["a", "b", "c"], 0.5), (["a", "b", "c", "d"], 0.0),
    ([], 0.0),
])
def test_multiple_choice_partial_credit(chosen, credit):
    assert QUESTIONS[1].credit(frozenset(chosen)) == credit


def test_scoring_counts_partial_and_missing_answers():
    answers = normalise_answers(QUESTIONS, {"s": "a", "m": ["a"], "t": "FALSE"})
    result = score(QUESTIONS, answers)
    assert result.credits == {"s": 1.0, "m": 0.5, "t": 1.0, "u": 0.0}
    assert (result.raw, result.max, result.scaled) == (2.5, 4, 0.625)


@pytest.mark.parametrize("answers, field", [
    ({"zz": "a"}, "answers.zz"), ({"s": "x"}, "answers.s"), ({"s": ["a", "b"]}, "answers.s"), ({"s": 3}, "answers.s"),
])
def test_answers_are_checked_against_the_paper(answers, field):
    with pytest.raises(DomainError) as caught:
        normalise_answers(QUESTIONS, answers)
    assert caught.value.field == field


def attempt(**overrides):
    fields = dict(id="a1", registration="r1", programme_id="p1", number=1, questions=QUESTIONS, bank_version=1,
                  pass_mark=0.7, started_at=T0, expires_at=T0 + timedelta(minutes=30))
    fields.update(overrides)
    return Attempt(**fields)


def test_submit_in_time_scores_saved_and_submitted_answers():
    saved = attempt().save({"s": "a", "u": "a"}, T0 + timedelta(minutes=5))
    done = saved.submit({"m": ["a", "b"], "t": False, "u": "b"}, T0 + timedelta(minutes=30))  # at the limit: in time
    assert done.status == SUBMITTED and done.finished_at == T0 + timedelta(minutes=30)
    assert done.score.scaled == 1.0 and done.success
    with pytest.raises(Conflict):
        done.submit({}, T0)


def test_submit_after_the_time_limit_counts_only_what_was_saved_in_time():
    saved = attempt().save({"s": "a", "t": "false"}, T0 + timedelta(minutes=29))
    late = saved.submit({"m": ["a", "b"], "u": "b"}, T0 + timedelta(minutes=30, seconds=1))
    assert late.status == TIMED_OUT and late.finished_at == saved.expires_at
    assert late.score.scaled == 0.5 and late.success is False
    with pytest.raises(Conflict):
        saved.save({"m": "a"}, T0 + timedelta(hours=1))


def test_a_timed_out_attempt_with_no_answers_scores_zero():
    closed = attempt().time_out()
    assert closed.score.scaled == 0.0 and closed.status == TIMED_OUT and attempt().status == OPEN


ENROLMENT = Enrolment(registration="r1", programme_id="p1", cohort_id="c1", learner_key="k", active=True,
                      deadline=T0 + timedelta(days=5))


@pytest.mark.parametrize("enrolment, history, now, error, words", [
    (None, History(0, False), T0, NotFound, "no enrolment"),
    (Enrolment("r1", "p1", "c1", "k", False, None), History(0, False), T0, Forbidden, "withdrew"),
    (ENROLMENT, History(0, False), T0 + timedelta(days=6), Forbidden, "deadline"),
    (ENROLMENT, History(1, True), T0, Conflict, "already passed"),
    (ENROLMENT, History(1, False, "a9"), T0, Conflict, "still open"),
    (ENROLMENT, History(2, False), T0, Conflict, "all 2 allowed"),
])
def test_attempt_rules(enrolment, history, now, error, words):
    with pytest.raises(error) as caught:
        check_can_start(enrolment, "r1", history, final_test(), now)
    assert words in caught.value.message


def test_attempt_allowed_within_the_rules():
    check_can_start(ENROLMENT, "r1", History(1, False), final_test(), T0)


def outcome(i, scaled, success, minutes):
    return Outcome(id=f"a{i}", started_at=T0, finished_at=T0 + timedelta(minutes=minutes), scaled=scaled,
                   success=success)


def test_summary_best_versus_last():
    history = [outcome(1, 0.8, True, 10), outcome(2, 0.5, False, 20)]
    best = summarise(history, BEST, max_attempts=3)
    assert (best.status, best.counted_score, best.best_score, best.latest_score) == (PASSED, 0.8, 0.8, 0.5)
    assert best.decided_at == T0 + timedelta(minutes=10)
    last = summarise(history, LAST, max_attempts=3)
    assert (last.status, last.counted_score) == (IN_PROGRESS, 0.5)  # the last counts, and attempts are left
    assert summarise(list(reversed(history)), LAST, 3) == last  # order-free


def test_summary_statuses():
    assert summarise([]).status == NOT_ATTEMPTED
    assert summarise([Outcome("a1", T0)]).status == IN_PROGRESS
    failed = [outcome(1, 0.5, False, 10)]
    assert summarise(failed, BEST, 2).status == IN_PROGRESS  # failed so far, with an attempt left
    out = summarise(failed + [outcome(2, 0.6, False, 30)], BEST, 2)
    assert out.status == FAILED and out.decided_at == T0 + timedelta(minutes=30)
    assert out.attempts_used == 2 and out.best_score == 0.6
    # An LMS may report success without a score: a pass still beats a scored fail.
    assert summarise(failed + [Outcome("x", None, T0 + timedelta(hours=1), None, True)], BEST, 2).status == PASSED
    assert summarise(failed, BEST, None).status == FAILED  # no rule known: each result is final, as in progress
