"""The assessment read model is a function of the set of statements, not of their order:
facts from different topics and partitions may arrive in any interleaving."""
import itertools
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from services.assessment import projections
from services.assessment import statements as assessment_statements
from services.assessment import tables as t
from services.assessment.domain import Attempt, FinalTest, build_bank
from services.enrollment import statements as enrollment_statements
from services.enrollment.domain import Cohort, Learner, Programme, enrol
from shared import db, xapi
from shared.events import EventType

T0 = datetime(2026, 11, 5, 9, tzinfo=UTC)
PROGRAMME = Programme(id="p1", code="DS1", title="Digital skills", required_modules=("https://x.test/m1",),
                      final_test="https://x.test/final", window_days=10, activity_id="https://x.test/p/DS1")
COHORT = Cohort(id="c1", programme_id="p1", name="Wave 1", agency="Tax", province=None, wave=1,
                accounts_issued_at=T0, activity_id="https://x.test/c/c1")
QUESTIONS = build_bank([{"id": f"q{i}", "text": f"q{i}", "type": "single_choice", "options": ["a", "b"],
                         "correct": "a"} for i in range(4)])


def facts() -> list[tuple[str, dict]]:
    """Two learners: one fails our test then an LMS reports a pass; one withdraws."""
    ana = enrol("e1", PROGRAMME, COHORT, Learner(name="Ana", email="ana@example.org"), T0)
    ben = enrol("e2", PROGRAMME, COHORT, Learner(name="Ben", email="ben@example.org"), T0)
    withdrawn = ben.withdraw("moved", T0 + timedelta(days=1))
    enrolled = enrollment_statements.learner_enrolled(ana, PROGRAMME, COHORT).statement
    known = SimpleNamespace(actor=enrolled["actor"], programme=enrolled["object"],
                            cohort=xapi.context_activity(enrolled, "grouping"), final_test=PROGRAMME.final_test)
    test = FinalTest(programme_id="p1", time_limit=timedelta(minutes=30), pass_mark=0.7, max_attempts=1,
                     question_count=4)
    attempt = Attempt(id="a1", registration="e1", programme_id="p1", number=1, questions=QUESTIONS,
                      bank_version=1, pass_mark=0.7, started_at=T0 + timedelta(days=2),
                      expires_at=T0 + timedelta(days=2, minutes=30))
    finished = attempt.submit({"q0": "a"}, T0 + timedelta(days=2, minutes=10))
    lms = xapi.agent(name="LMS", account_home_page="https://lms.test", account_name="lms")
    reported = xapi.statement(enrolled["actor"], xapi.PASSED, xapi.activity(PROGRAMME.final_test), authority=lms,
                              result={"success": True, "score": {"scaled": 0.9}}, timestamp=T0 + timedelta(days=3))
    events = [
        enrollment_statements.programme_defined(PROGRAMME, "ops", T0),
        enrollment_statements.learner_enrolled(ana, PROGRAMME, COHORT),
        enrollment_statements.learner_enrolled(ben, PROGRAMME, COHORT),
        enrollment_statements.learner_withdrew(withdrawn, PROGRAMME, COHORT),
        assessment_statements.final_test_defined(test, 1, PROGRAMME.final_test, enrolled["object"], "ops", T0),
        assessment_statements.final_test_defined(FinalTest(**{**test.__dict__, "max_attempts": 3}), 2,
                                                 PROGRAMME.final_test, enrolled["object"], "ops2", T0),
        assessment_statements.attempt_started(attempt, known),
        *assessment_statements.attempt_finished(finished, known),
    ]
    return [(e.type, e.statement) for e in events] + [(EventType.LRS_STATEMENT, reported)]


def project(order: list[tuple[str, dict]]) -> dict:
    engine = db.create_engine("sqlite://")
    t.metadata.create_all(engine)
    with engine.begin() as conn:
        for event_type, stmt in order:
            handler = projections.HANDLERS.get(event_type)
            if handler:
                handler(conn, [stmt])
        rows = {table.name: sorted(tuple(map(repr, row)) for row in conn.execute(sa.select(table)))
                for table in t.READ_MODELS}
    engine.dispose()
    return rows


ENROLLMENT_TYPES = {EventType.PROGRAMME_DEFINED, EventType.LEARNER_ENROLLED, EventType.LEARNER_WITHDREW}


def _partition(fact) -> tuple[str, str]:
    event_type, stmt = fact
    topic = "lrs" if event_type == EventType.LRS_STATEMENT else (
        "enrollment" if event_type in ENROLLMENT_TYPES else "assessment")
    return topic, xapi.learner_key(stmt["actor"])


def per_learner_order(facts_: list, seed: int) -> list:
    """Any interleaving that keeps each learner's (and each operator's) own facts in order,
    which is all Kafka promises across partitions and topics."""
    rng = random.Random(seed)
    # sorted() is stable, so each queue keeps publication order.
    queues = [list(group) for _, group in itertools.groupby(sorted(facts_, key=_partition), key=_partition)]
    merged = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        merged.append(queue.pop(0))
    return merged


@pytest.mark.parametrize("seed", range(8))
def test_any_cross_partition_order_gives_the_same_rows(seed):
    published = facts()
    expected = project(published)
    assert project(per_learner_order(published, seed)) == expected
    results = {row[0]: row for row in expected["learner_results"]}
    assert "'passed'" in results["'e1'"]  # the LMS pass counts: best of (0.25 fail, pass)
    assert "'withdrawn'" in results["'e2'"] and "'not_attempted'" in results["'e2'"]


@pytest.mark.parametrize("event_type,breaks", [
    (EventType.ATTEMPT_STARTED, lambda s: s["context"]["extensions"][xapi.EXT_ATTEMPT].pop("started_at")),
    (EventType.ATTEMPT_FAILED, lambda s: s["context"]["extensions"][xapi.EXT_ATTEMPT].pop("started_at")),
    (EventType.ATTEMPT_FAILED, lambda s: s.pop("result")),
    (EventType.FINAL_TEST_DEFINED, lambda s: s["object"]["definition"]["extensions"][xapi.EXT_FINAL_TEST].pop(
        "revision")),
])
def test_a_statement_that_breaks_the_contract_is_unprocessable_not_retried_for_ever(event_type, breaks):
    """A field missing from one of our own statements can never be supplied by a retry:
    the reading contract dead-letters it (shared.errors.Unprocessable) and goes on."""
    import copy

    from shared.errors import Unprocessable

    stmt = copy.deepcopy(next(s for kind, s in facts() if kind == event_type))
    breaks(stmt)
    engine = db.create_engine("sqlite://")
    t.metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(Unprocessable, match="breaks the event contract"):
        projections.HANDLERS[event_type](conn, [stmt])
    engine.dispose()
