"""The progress rows kept incrementally (each batch's new facts merged into per-learner
sums, services.progress.facts) equal the rows derived from all stored facts at once
(`refresh_everyone`, the end of a rebuild), and a rebuild's, over random streams: any
order and batch size, redelivered statements, voids before and after their statements,
late enrolments, withdrawals, final-test attempts and verdicts, certificates earned and
revoked, odd durations (hypothesis)."""
from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.progress import facts as progress_facts
from services.progress import tables as t
from services.progress.service import SERVICE as PROGRESS
from shared import db, events, xapi
from shared.consumer import ProjectionRunner, replay_engine
from tests.support import statements as s

COHORT = "33333333-3333-4333-8333-333333333333"
ISSUED = datetime(2026, 11, 2, tzinfo=UTC)
DEADLINE = ISSUED + timedelta(days=10)
LAUNCHED = xapi.Verb("http://adlnet.gov/expapi/verbs/launched", "launched")
ACTIVITIES = [*s.MODULES, s.FINAL_TEST, "https://content.test/elsewhere"]
DURATIONS = [None, "PT10M", "PT0.0005S", "PT1.2345S", "PT0.1S", "P1DT2H", "bogus", "PT59.9999S"]


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


def snapshot(runner) -> dict:
    with runner.engine.connect() as conn:
        return {name: [row._asdict() for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
                for name, table in (("enrolments", t.learner_enrolments), ("activities", t.learner_activities),
                                    ("days", t.learner_activity_days))}


def stream(rng: random.Random, learners: int) -> list[tuple[str, dict]]:
    """A random history for a few learners, in a random order, with redeliveries."""
    moments = iter(rng.sample(range(1, 20_000), 2_000))  # distinct: no ties between facts

    def at() -> datetime:
        return ISSUED + timedelta(minutes=next(moments))

    out: list[tuple[str, dict]] = []
    enrolments: list[list[tuple[str, dict]]] = []
    for n in range(learners):
        registration = s.new_id()
        own = [s.enrolled(n, registration, COHORT, at(), DEADLINE)]
        if rng.random() < 0.3:
            own.append(s.withdrew(n, registration, COHORT, at(), DEADLINE))
        enrolments.append(own)
        for _ in range(rng.randint(0, 14)):
            verb = rng.choice([LAUNCHED, xapi.COMPLETED, xapi.PASSED, s.xapi.Verb(
                "http://adlnet.gov/expapi/verbs/progressed", "progressed")])
            result = {}
            if (duration := rng.choice(DURATIONS)) is not None:
                result["duration"] = duration
            if rng.random() < 0.2:
                result["completion"] = True
            out.append((events.EventType.LRS_STATEMENT, xapi.statement(
                s.learner(n), verb, xapi.activity(rng.choice(ACTIVITIES)), authority=s.AUTHORITY,
                registration=registration if rng.random() < 0.5 else None, result=result or None, timestamp=at())))
        attempts = [str(uuid.uuid4()) for _ in range(rng.randint(0, 3))]
        for attempt in attempts:
            out.append((events.EventType.ATTEMPT_STARTED, xapi.statement(
                s.learner(n), xapi.ATTEMPTED, xapi.activity(s.FINAL_TEST), authority=s.AUTHORITY,
                registration=registration, context_extensions={xapi.EXT_ATTEMPT: {"id": attempt}}, timestamp=at())))
            if rng.random() < 0.8:
                success = rng.random() < 0.4
                told = {"id": attempt, "attempts_used": attempts.index(attempt) + 1, "attempts_allowed": 3}
                out.append((events.EventType.ATTEMPT_PASSED if success else events.EventType.ATTEMPT_FAILED,
                            xapi.statement(s.learner(n), xapi.PASSED if success else xapi.FAILED,
                                           xapi.activity(s.FINAL_TEST), authority=s.AUTHORITY,
                                           registration=registration,
                                           result={"success": success, "score": {"scaled": round(rng.random(), 2)},
                                                   "extensions": {xapi.EXT_ATTEMPT: told}},
                                           context_extensions={xapi.EXT_ATTEMPT: {"id": attempt}}, timestamp=at())))
        for _ in range(rng.randint(0, 2)):  # an LMS's verdicts, no attempt of ours
            out.append(s.final_test(n, rng.random() < 0.5, round(rng.random(), 2), at(), registration))
        if rng.random() < 0.5:
            number = f"DSK-2026-{n:06d}"
            out.append(s.certificate(n, number, at()))
            if rng.random() < 0.4:
                out.append(s.certificate(n, number, at(), revoked=True))
    voidable = [stmt for kind, stmt in out
                if kind == events.EventType.LRS_STATEMENT or str(kind).startswith("final-test")]
    voids = [s.voiding(int(stmt["actor"]["name"].split()[-1]), stmt["id"], at())
             for stmt in rng.sample(voidable, k=min(len(voidable), rng.randint(0, 4)))]
    out += voids
    rng.shuffle(out)
    # Enrollment's statements of one learner keep their order (one partition); anywhere
    # else in the stream, before or after the learner's facts.
    for own in enrolments:
        place = sorted(rng.randint(0, len(out)) for _ in own)
        for offset, (position, fact) in enumerate(zip(place, own, strict=True)):
            out.insert(position + offset, fact)
    return out + rng.sample(out, k=min(4, len(out)))  # redelivery


def apply(runner, facts, rng: random.Random, engine=None) -> None:
    records = s.as_records(facts)
    start = 0
    while start < len(records):
        size = rng.choice([1, 2, 3, 7, 20, 100])
        runner.process(records[start:start + size], engine=engine)
        start += size


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 5), st.integers(0, 1_000_000))
def test_incremental_rows_equal_a_full_recompute_and_a_rebuild(runner, learners, seed):
    facts = stream(random.Random(seed), learners)

    reset(runner)
    apply(runner, facts, random.Random(seed + 1))
    live = snapshot(runner)
    assert len(live["enrolments"]) == learners

    with runner.engine.begin() as conn:  # everything derived again from the stored facts
        progress_facts.refresh_everyone(conn)
    assert snapshot(runner) == live

    reset(runner)  # a rebuild: the facts alone while replaying, then derived once
    replaying = replay_engine(runner.engine)
    apply(runner, facts, random.Random(seed + 2), engine=replaying)
    with replaying.begin() as conn:
        runner.projection.after_replay(conn, 0, 1)
    assert snapshot(runner) == live

    reset(runner)  # a rebuild with three jobs: after_replay in three parts, one each
    apply(runner, facts, random.Random(seed + 3), engine=replaying)
    for part in range(3):
        with replaying.begin() as conn:
            runner.projection.after_replay(conn, part, 3)
    assert snapshot(runner) == live
