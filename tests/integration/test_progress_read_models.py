"""The progress read models on a real database: any arrival order, duplicates, and the
property that cohort counts always agree with the learner rows (hypothesis)."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.progress import queries
from services.progress import tables as t
from services.progress.service import SERVICE as PROGRESS
from shared import db
from shared.consumer import ProjectionRunner
from tests.support import contract
from tests.support import statements as s

COHORT = "22222222-2222-4222-8222-222222222222"
ISSUED = datetime(2026, 11, 2, tzinfo=UTC)
DEADLINE = ISSUED + timedelta(days=10)


@pytest.fixture
def runner(deployment):
    settings_ = deployment.settings("progress")
    engine = db.create_engine(settings_.database_url)
    yield ProjectionRunner(settings_, engine, PROGRESS.projection(settings_), PROGRESS.offsets, PROGRESS.processed)
    engine.dispose()


def reset(runner) -> None:
    with runner.engine.begin() as conn:
        for table in [*runner.projection.tables, runner.processed, runner.offsets]:
            conn.execute(table.delete())


def apply(runner, facts, batch: int = 7) -> None:
    records = s.as_records(facts)
    for start in range(0, len(records), batch):
        runner.process(records[start:start + batch])


def learner_rows(runner) -> list[dict]:
    with runner.engine.connect() as conn:
        rows = conn.execute(sa.select(t.learner_enrolments).order_by(t.learner_enrolments.c.registration)).all()
    return [row._asdict() for row in rows]


def learner_facts(n: int, plan: dict) -> list[tuple[str, dict]]:
    """One learner's facts. Enrollment's own are in their real order; the rest anywhere."""
    registration = plan["registration"]
    at = ISSUED + timedelta(hours=n)
    facts = [s.enrolled(n, registration, COHORT, at, DEADLINE)]
    for i, module in enumerate(s.MODULES[:plan["modules"]]):
        facts.append(s.completed(n, module, at + timedelta(days=i + plan["lateness"]),
                                 registration=registration if i % 2 else None))
    for j, (success, score) in enumerate(plan["attempts"]):
        facts.append(s.final_test(n, success, score, at + timedelta(days=4 + j + plan["lateness"]), registration))
    if plan["certified"]:
        facts.append(s.certificate(n, f"DSK-2026-{n:06d}", at + timedelta(days=8)))
        if plan["revoked"]:
            facts.append(s.certificate(n, f"DSK-2026-{n:06d}", at + timedelta(days=9), revoked=True))
    if plan["withdrawn"]:
        facts.append(s.withdrew(n, registration, COHORT, at + timedelta(days=3), DEADLINE))
    return facts


plans = st.fixed_dictionaries({
    "modules": st.integers(0, 3),
    "attempts": st.lists(st.tuples(st.booleans(), st.floats(0, 1)), max_size=3),
    "certified": st.booleans(),
    "revoked": st.booleans(),
    "withdrawn": st.booleans(),
    "lateness": st.integers(0, 12),
})


def shuffled_keeping_enrolment_first(facts: list, seed: int) -> list:
    """Any order across topics, but enrollment's statements of one learner keep their
    order (one partition, one producer) and the withdrawal follows the enrolment."""
    rng = random.Random(seed)
    enrol = [f for f in facts if f[0] == s.events.EventType.LEARNER_ENROLLED]
    withdraw = [f for f in facts if f[0] == s.events.EventType.LEARNER_WITHDREW]
    rest = [f for f in facts if f not in enrol and f not in withdraw]
    out = rest + enrol
    rng.shuffle(out)
    for fact in withdraw:
        registration = fact[1]["context"]["registration"]
        after = max(i for i, f in enumerate(out)
                    if f[0] == s.events.EventType.LEARNER_ENROLLED and f[1]["context"]["registration"] == registration)
        out.insert(rng.randint(after + 1, len(out)), fact)
    duplicates = rng.sample(out, k=min(3, len(out)))  # redelivery
    return out + duplicates


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(plans, min_size=1, max_size=6), st.integers(0, 10_000), st.integers(0, 25))
def test_counts_agree_with_rows_and_order_does_not_matter(runner, learner_plans, seed, day):
    plans_ = [dict(plan, registration=s.new_id()) for plan in learner_plans]
    facts = [fact for n, plan in enumerate(plans_) for fact in learner_facts(n, plan)]

    reset(runner)
    apply(runner, facts)
    in_order = learner_rows(runner)

    reset(runner)
    apply(runner, shuffled_keeping_enrolment_first(facts, seed))
    assert learner_rows(runner) == in_order

    now = ISSUED + timedelta(days=day)
    counts = queries.cohort(runner.engine, COHORT, now, None)
    listed = queries.learners(runner.engine, COHORT, {"page": 1, "page_size": 1000}, now, None)["items"]
    assert len(listed) == len(plans_)
    expected = {
        "enrolled": sum(r["status"] == "enrolled" for r in listed),
        "withdrawn": sum(r["status"] == "withdrawn" for r in listed),
        "started": sum(r["status"] == "enrolled" and r["first_activity_at"] is not None for r in listed),
        "modules_completed": sum(r["status"] == "enrolled" and r["modules_completed"] == 3 for r in listed),
        "passed": sum(r["status"] == "enrolled" and r["final_test_status"] == "passed" for r in listed),
        "failed": sum(r["status"] == "enrolled" and r["final_test_status"] == "failed" for r in listed),
        "certified": sum(r["status"] == "enrolled" and r["certificate_status"] == "valid" for r in listed),
        "overdue": sum(r["overdue"] for r in listed),
    }
    assert {k: counts[k] for k in expected} == expected
    # The series counts the same learners (withdrawn ones in no figure of it).
    series = queries.series(runner.engine, COHORT, now, None)
    assert {name: sum(d[name] for d in series) for name in ("enrolled", "completed", "certified")} == {
        "enrolled": counts["enrolled"], "completed": counts["modules_completed"], "certified": counts["certified"]}
    # Each state filter lists exactly the learners the counts count.
    for state in ("overdue", "certified", "passed", "withdrawn"):
        filtered = queries.learners(runner.engine, COHORT, {"page": 1, "page_size": 1000, "state": state}, now, None)
        assert filtered["total"] == counts[state]


def test_a_completion_before_the_enrolment_and_without_registration_still_counts(runner):
    registration = s.new_id()
    at = ISSUED + timedelta(days=1)
    apply(runner, [s.completed(1, s.MODULES[0], at), s.completed(1, s.MODULES[1], at, verb=s.xapi.PASSED),
                   s.completed(1, s.MODULES[2], at, verb=s.xapi.SATISFIED),
                   s.final_test(1, True, 0.9, at + timedelta(hours=1))])
    apply(runner, [s.enrolled(1, registration, COHORT, ISSUED, DEADLINE)])
    [row] = learner_rows(runner)
    assert (row["modules_completed"], row["final_test_status"]) == (3, "passed")
    assert row["finished_at"] == at + timedelta(hours=1)
    assert row["time_spent_seconds"] == 1800
    assert row["first_activity_at"] == at and row["last_activity_at"] == at + timedelta(hours=1)


def test_overdue_follows_the_clock_without_new_statements(runner):
    apply(runner, [s.enrolled(1, s.new_id(), COHORT, ISSUED, DEADLINE),
                   s.enrolled(2, s.new_id(), COHORT, ISSUED, DEADLINE)]
          + [s.completed(2, m, ISSUED + timedelta(days=1)) for m in s.MODULES]
          + [s.final_test(2, True, 0.8, ISSUED + timedelta(days=2))])
    before = queries.cohort(runner.engine, COHORT, DEADLINE - timedelta(minutes=1), None)
    after = queries.cohort(runner.engine, COHORT, DEADLINE + timedelta(minutes=1), None)
    assert (before["overdue"], after["overdue"]) == (0, 1)
    overdue = queries.learners(runner.engine, COHORT, {"page": 1, "page_size": 10, "state": "overdue"},
                             DEADLINE + timedelta(minutes=1), None)["items"]
    assert [r["name"] for r in overdue] == ["Learner 1"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_rebuild_reproduces_the_rows(runner, deployment, jobs):
    """From the real topic: publish a stream, project it live, rebuild (in one process, or
    two sharing the partitions), compare."""
    settings_ = deployment.settings("progress")
    from shared import bus
    bus.ensure_topics(settings_, PROGRESS.topics(settings_))
    facts = [f for n in range(5) for f in learner_facts(n, {
        "registration": s.new_id(), "modules": n % 4, "attempts": [(n % 2 == 0, 0.5 + n / 10)],
        "certified": n == 4, "revoked": False, "withdrawn": n == 1, "lateness": n})]
    topics = {"enrolment": "enrollment", "lrs": "lrs", "final-test": "assessment", "certificate": "certification"}
    publisher = bus.Publisher(settings_, role="test")
    publisher.publish((settings_.topic(topics[kind.split(".")[0]]), s.xapi.learner_key(stmt["actor"]).encode(),
                       s.xapi.encode(stmt), s.events.statement_headers(contract.TEST_SOURCE, kind, stmt))
                      for kind, stmt in facts)
    publisher.close()
    deployment.start_worker("progress")
    from tests.support.flows import eventually

    eventually(lambda: len(rows := learner_rows(runner)) == 5 and sum(r["final_test_attempts"] for r in rows) == 5)
    deployment.stop_workers()
    live = learner_rows(runner)
    stored = _lrs_ids(runner)
    assert {stmt["id"] for kind, stmt in facts if not kind.startswith("lrs.")} <= stored  # the others' too
    # One more enrolment the live run never read: the rebuild reads it, and stores it in
    # the LRS as the live run would have (it skips only the statements the LRS holds).
    late = s.enrolled(9, s.new_id(), COHORT, ISSUED, DEADLINE)
    publisher = bus.Publisher(settings_, role="test")
    publisher.publish([(settings_.topic("enrollment"), s.xapi.learner_key(late[1]["actor"]).encode(),
                        s.xapi.encode(late[1]), s.events.statement_headers(contract.TEST_SOURCE, *late))])
    publisher.close()
    read = runner.rebuild(progress=False, jobs=jobs)
    assert read == len(facts) + 1
    assert sum(runner.stored_offsets().values()) == read  # the worker resumes after the last record
    rebuilt = learner_rows(runner)
    assert [row for row in rebuilt if row["name"] != "Learner 9"] == live and len(rebuilt) == 6
    assert _lrs_ids(runner) == stored | {late[1]["id"]}


def _lrs_ids(runner) -> set[str]:
    from services.progress.lrs import tables as lrs_tables

    with runner.engine.connect() as conn:
        return set(conn.scalars(sa.select(lrs_tables.statements.c.id)))


@pytest.mark.parametrize("void_first", [False, True])
def test_a_voided_completion_stops_counting_whenever_the_void_arrives(runner, void_first):
    at = ISSUED + timedelta(days=1)
    completions = [s.completed(1, m, at) for m in s.MODULES]
    void = s.voiding(1, completions[2][1]["id"], at + timedelta(hours=1))
    stream = [s.enrolled(1, s.new_id(), COHORT, ISSUED, DEADLINE)]
    stream += [void, *completions] if void_first else [*completions, void]
    apply(runner, stream, batch=2)
    [row] = learner_rows(runner)
    assert row["modules_completed"] == 2 and row["modules_completed_at"] is None


def test_a_satisfied_cmi5_course_completes_the_modules_it_stands_for(runner):
    from services.progress.cmi5 import statements as cmi5_statements
    from services.progress.cmi5 import terms

    registration = s.new_id()
    at = ISSUED + timedelta(days=1)
    satisfied = cmi5_statements.satisfied(s.learner(1), "https://lms.test/cmi5/c1", terms.TYPE_COURSE, {"en": "C"},
                                          registration, s.new_id(), "https://publisher.test/course", at,
                                          modules=s.MODULES)
    apply(runner, [s.enrolled(1, registration, COHORT, ISSUED, DEADLINE),
                   (s.events.EventType.LRS_STATEMENT, satisfied)])
    [row] = learner_rows(runner)
    assert (row["modules_completed"], row["modules_completed_at"]) == (3, at)
