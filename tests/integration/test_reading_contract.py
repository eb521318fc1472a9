"""The reading contract under faults: only unprocessable records are dead-lettered, a
passing fault is waited out with nothing dropped, a breaker stops a projection that
would drain its topics, dead letters can be replayed, and a rebuild publishes nothing.
Real broker, real database (SQLite or PostgreSQL as the run says; a private PostgreSQL
for the tests that stop it)."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.progress import tables as progress_tables
from services.progress.service import SERVICE as PROGRESS
from shared import bus, db, dead_letters, events, xapi
from shared.config import DatabaseTimeouts
from shared.consumer import Projection, ProjectionRunner, ProjectionStopped, RebuildFailed, replay_engine
from shared.errors import Unprocessable
from tests.conftest import Deployment
from tests.support import contract
from tests.support import statements as s
from tests.support.flows import eventually, read_topic
from tests.support.postgres import PrivatePostgres

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
COHORT = "22222222-2222-4222-8222-222222222222"


def _enrolment(n: int) -> tuple[str, dict]:
    return s.enrolled(n, s.new_id(), COHORT, NOW, NOW + timedelta(days=10))


def _record(topic: str, kind: str, stmt: dict, **changes) -> tuple:
    key = changes["key"] if "key" in changes else xapi.learner_key(stmt["actor"]).encode()
    subject = key.decode(errors="replace") if key else ""
    record = {"topic": topic, "key": key, "value": xapi.encode(stmt),
              "headers": events.headers(contract.TEST_SOURCE, kind, stmt["id"], subject, stmt["stored"])} | changes
    return record["topic"], record["key"], record["value"], record["headers"]


def _publish(settings, records) -> None:
    publisher = bus.Publisher(settings, role="test")
    try:
        publisher.publish(records)
    finally:
        publisher.close()


def _count(engine, table) -> int:
    with db.reading(engine) as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def _retries() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("learnstream_projection_retries_total", {"service": "progress"}) or 0.0


def _runner(settings, projection=None) -> ProjectionRunner:
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    return ProjectionRunner(settings, engine, projection or PROGRESS.projection(settings), PROGRESS.offsets,
                            PROGRESS.processed)


def _run(runner: ProjectionRunner):
    stop, failure = threading.Event(), []

    def target():
        try:
            runner.run(stop)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            failure.append(exc)
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return stop, thread, failure


# --- malformed records ---------------------------------------------------------------------------

@pytest.mark.malformed_records
def test_every_malformed_record_is_dead_lettered_and_the_next_one_is_applied(deployment):
    settings = deployment.settings("progress")
    bus.ensure_topics(settings, PROGRESS.topics(settings))
    topic = settings.topic("enrollment")
    group = xapi.statement({"objectType": "Group", "member": 5}, xapi.REGISTERED, s.programme_activity(),
                           authority=s.AUTHORITY)
    malformed = {
        "group member not a list": _record(topic, events.EventType.LEARNER_ENROLLED, group,
                                           key=b"group"),
        "event type not UTF-8": _record(topic, "x", _enrolment(90)[1],
                                        headers=[("source", b"test"), ("event-type", b"\xff\xfe")]),
        "ce_type not UTF-8": _record(topic, "x", _enrolment(97)[1],
                                     headers=[("ce_source", b"/learnstream/test"), ("ce_type", b"\xff\xfe")]),
        "no key": _record(topic, *_enrolment(91), key=None),
        "key not UTF-8": _record(topic, *_enrolment(92), key=b"\xff\xfe"),
        "no headers": _record(topic, *_enrolment(93), headers=[]),
        "no value": _record(topic, *_enrolment(94), value=None),
        "not JSON": _record(topic, *_enrolment(95), value=b"{not json"),
        "breaks the enrollment contract": _record(topic, events.EventType.LEARNER_ENROLLED, xapi.statement(
            s.learner(96), xapi.REGISTERED, xapi.activity("https://x.test/no-programme"), authority=s.AUTHORITY)),
    }
    good = [_enrolment(n) for n in range(len(malformed))]
    # Each malformed record, then a good one on the same partition (the same key, where
    # the bad record has a usable one).
    interleaved = []
    for bad, (kind, stmt) in zip(malformed.values(), good, strict=True):
        key = bad[1] if bad[1] and bad[1] != b"\xff\xfe" else b"same-partition"
        interleaved += [bad, _record(topic, kind, stmt, key=key)]
    _publish(settings, interleaved)

    deployment.start_worker("progress")
    engine = db.create_engine(settings.database_url)
    try:
        eventually(lambda: _count(engine, progress_tables.learner_enrolments) == len(good), 60,
                   message=f"{len(good)} enrolments")
    finally:
        engine.dispose()
    dead = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.dead_letter_topic, len(malformed))
    assert len(dead) == len(malformed)
    assert {r.value for r in dead} == {bad[2] for bad in interleaved[::2]}
    assert all(events.header(r.headers, "dead-letter-topic") == topic for r in dead)
    reasons = [events.header(r.headers, "dead-letter-reason") for r in dead]
    assert all(r.startswith(("unparseable", "unprocessable")) for r in reasons), reasons


# --- passing faults ------------------------------------------------------------------------------

def _enrolments_on_the_bus(settings, count: int) -> None:
    bus.ensure_topics(settings, PROGRESS.topics(settings))
    _publish(settings, [_record(settings.topic("enrollment"), *_enrolment(n)) for n in range(count)])


@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgresql"), reason="SQLite's write lock")
def test_a_locked_sqlite_database_is_waited_out_and_nothing_is_dead_lettered(deployment):
    # The projection's engine gives up on the write lock after 1 s.
    settings = deployment.settings("progress", consumer_max_records=50, consumer_retry_max_seconds=1.0,
                                   database_timeouts=DatabaseTimeouts(sqlite_busy_seconds=1))
    path = settings.database_url.removeprefix("sqlite:///")
    retries_before = _retries()
    # Another process holds the write lock for many busy timeouts.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(12); c.execute('ROLLBACK')\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _enrolments_on_the_bus(settings, 120)
        runner = _runner(settings)
        stop, thread, failure = _run(runner)
        time.sleep(6)
        assert _count(runner.engine, progress_tables.learner_enrolments) == 0  # still locked out
        assert _retries() > retries_before  # "database is locked": rolled back and retried, not dead-lettered
        holder.wait(timeout=30)
        eventually(lambda: _count(runner.engine, progress_tables.learner_enrolments) == 120, 60)
        time.sleep(1)
        assert _count(runner.engine, progress_tables.learner_enrolments) == 120
        assert _count(runner.engine, progress_tables.processed_statements) == 120
        assert not failure and thread.is_alive()
        stop.set()
        thread.join(timeout=30)
    finally:
        holder.kill()
    assert bus.read_topics(settings, [settings.dead_letter_topic]) == []
    with sqlite3.connect(path) as conn:  # the offsets moved past every record, once
        assert conn.execute("SELECT sum(next_offset) FROM consumer_offsets").fetchone()[0] == 120


@pytest.fixture
def private_pg():
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_postgresql_stopped_mid_batch_is_waited_out_and_the_read_model_is_exact(kafka_bootstrap, tmp_path,
                                                                                 private_pg):
    deployment = Deployment(kafka_bootstrap, tmp_path)
    deployment.env["DATABASE_URL"] = private_pg.url.rsplit("/", 1)[0] + f"/t{deployment.run_id}"
    try:
        settings = deployment.settings("progress", consumer_max_records=50, consumer_retry_max_seconds=1.0)
        real = PROGRESS.projection(settings)
        stopped = threading.Event()

        def stops_the_server_once(conn, statements):
            real.handlers[events.EventType.LEARNER_ENROLLED](conn, statements)
            if not stopped.is_set():
                stopped.set()
                private_pg.stop()  # mid-batch: this transaction can never commit
        projection = Projection(topics=real.topics, tables=real.tables,
                                handlers={**real.handlers, events.EventType.LEARNER_ENROLLED: stops_the_server_once})
        _enrolments_on_the_bus(settings, 300)
        runner = _runner(settings, projection)
        stop, thread, failure = _run(runner)
        assert stopped.wait(60)
        time.sleep(15)
        assert not failure and thread.is_alive()
        private_pg.start()
        eventually(lambda: _count(runner.engine, progress_tables.learner_enrolments) == 300, 90)
        time.sleep(1)
        assert _count(runner.engine, progress_tables.learner_enrolments) == 300
        assert _count(runner.engine, progress_tables.processed_statements) == 300
        stop.set()
        thread.join(timeout=30)
        runner.engine.dispose()
        assert bus.read_topics(settings, [settings.dead_letter_topic]) == []
    finally:
        deployment.close()


# --- the breaker ---------------------------------------------------------------------------------

def _refusing_every_enrolment(settings) -> Projection:
    real = PROGRESS.projection(settings)

    def refuses(conn, statements):
        raise Unprocessable("refers to a programme that can never exist")
    return Projection(topics=real.topics, tables=real.tables,
                      handlers={**real.handlers, events.EventType.LEARNER_ENROLLED: refuses})


def test_a_handler_that_refuses_every_record_stops_the_projection_at_the_limit(deployment):
    settings = deployment.settings("progress", consumer_dead_letter_limit=5, consumer_max_records=500)
    projection = _refusing_every_enrolment(settings)
    _enrolments_on_the_bus(settings, 200)
    time.sleep(1)  # all on the topic before the first fetch: one batch holds more than the limit
    runner = _runner(settings, projection)
    stop, thread, failure = _run(runner)
    thread.join(timeout=120)
    assert failure and isinstance(failure[0], ProjectionStopped)
    assert "CONSUMER_DEAD_LETTER_LIMIT=5" in str(failure[0])
    # Nothing drained: no dead letter, and the offsets did not move past the first failing record.
    assert bus.read_topics(settings, [settings.dead_letter_topic]) == []
    assert sum(runner.stored_offsets().values()) == 0
    runner.engine.dispose()


def test_the_rebuild_cli_shares_the_partitions_among_jobs(deployment):
    settings = deployment.settings("progress")
    _enrolments_on_the_bus(settings, 30)
    env = dict(os.environ, **deployment.env)
    done = subprocess.run([sys.executable, "-m", "shared.cli", "rebuild", "progress", "--jobs", "2", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "progress: rebuilt from 30 records" in done.stdout
    assert re.search(r"; clear [\d.]+ s, replay [\d.]+ s, after replay [\d.]+ s\)", done.stdout)  # the phases
    engine = db.create_engine(settings.database_url)
    try:
        assert _count(engine, progress_tables.learner_enrolments) == 30
    finally:
        engine.dispose()


def test_a_rebuild_whose_process_trips_the_breaker_fails_and_names_it(deployment):
    """With several jobs, a process that fails ends the rebuild with its reason; none hangs."""
    settings = deployment.settings("progress", consumer_dead_letter_limit=5)
    _enrolments_on_the_bus(settings, 200)
    runner = _runner(settings, _refusing_every_enrolment(settings))
    with pytest.raises(RebuildFailed, match="ProjectionStopped: .*CONSUMER_DEAD_LETTER_LIMIT=5"):
        runner.rebuild(progress=False, jobs=2)
    assert bus.read_topics(settings, [settings.dead_letter_topic]) == []
    runner.engine.dispose()


# --- dead letters as a quarantine ----------------------------------------------------------------

def test_dead_letters_are_listed_and_a_replay_after_the_fix_applies_them_once(deployment):
    settings = deployment.settings("progress")
    real = PROGRESS.projection(settings)
    fixed = threading.Event()

    def broken_for_ana(conn, statements):
        if not fixed.is_set() and any(st["actor"]["name"] == "Learner 7" for st in statements):
            raise Unprocessable("cohort unknown")  # as a bug would say it, until fixed
        real.handlers[events.EventType.LEARNER_ENROLLED](conn, statements)
    projection = Projection(topics=real.topics, tables=real.tables,
                            handlers={**real.handlers, events.EventType.LEARNER_ENROLLED: broken_for_ana})
    _enrolments_on_the_bus(settings, 10)
    runner = _runner(settings, projection)
    stop, thread, failure = _run(runner)
    eventually(lambda: _count(runner.engine, progress_tables.learner_enrolments) == 9, 60)
    stop.set()
    thread.join(timeout=30)
    assert not failure

    letters = eventually(lambda: dead_letters.quarantined(runner), 30)
    assert len(letters) == 1 and letters[0].reason == "unprocessable: cohort unknown"
    assert letters[0].topic == settings.topic("enrollment")
    assert dead_letters.counts_by_reason(letters) == {"unprocessable: cohort unknown": 1}

    still = dead_letters.replay(runner, letters, progress=False)  # not fixed yet: stays in quarantine
    assert (still.applied, still.still_failing) == (0, 1)
    assert [d.reason for d in dead_letters.quarantined(runner)] == ["unprocessable: cohort unknown"]

    fixed.set()
    outcome = dead_letters.replay(runner, dead_letters.quarantined(runner), progress=False)
    assert (outcome.applied, outcome.still_failing) == (1, 0)
    assert _count(runner.engine, progress_tables.learner_enrolments) == 10
    assert dead_letters.quarantined(runner) == []
    # Replaying the same dead letter again (say, from a stale listing) changes nothing.
    again = dead_letters.replay(runner, letters, progress=False)
    assert again.still_failing == 0
    assert _count(runner.engine, progress_tables.learner_enrolments) == 10
    assert _count(runner.engine, progress_tables.processed_statements) == 10
    runner.engine.dispose()


def test_the_dead_letters_cli_lists_and_replays(deployment):
    settings = deployment.settings("progress")
    bus.ensure_topics(settings, PROGRESS.topics(settings))
    _publish(settings, [_record(settings.topic("enrollment"), *_enrolment(1), value=b"{not json")])
    deployment.start_worker("progress")
    read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.dead_letter_topic, 1)
    deployment.stop_workers()
    env = dict(os.environ, **deployment.env)
    cli = [sys.executable, "-m", "shared.cli", "dead-letters"]
    listed = subprocess.run([*cli, "list", "progress"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "1 dead letters in quarantine" in listed.stdout and "unparseable: not JSON" in listed.stdout
    replayed = subprocess.run([*cli, "replay", "progress", "--no-progress"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert replayed.returncode == 0, replayed.stderr
    assert "0 applied, 1 still failing" in replayed.stdout
    # Still failing, so still in quarantine, once, with its reason.
    listed = subprocess.run([*cli, "list", "progress"], env=env, capture_output=True, text=True, timeout=120)
    assert "1 dead letters in quarantine" in listed.stdout


# --- a replay publishes nothing a live run did not -----------------------------------------------

def _topic_sizes(settings, topics) -> dict[str, int]:
    client = bus.consumer(settings, group_id=None)
    try:
        tps = [tp for topic in topics for tp in bus.partitions(client, topic)]
        sizes: dict[str, int] = {}
        for (topic, _), (_, high) in bus.end_offsets(client, tps).items():
            sizes[topic] = sizes.get(topic, 0) + high
        return sizes
    finally:
        client.close()


def test_a_certification_rebuild_yields_the_same_certificates_and_puts_nothing_on_the_bus(deployment):
    from services.certification import tables as ct
    from services.certification.service import SERVICE as CERTIFICATION
    from tests.support.certification import (
        AUTH,
        cohort_with_learners,
        deciding_statements,
        produce,
        wait_for_certificates,
    )

    programme, cohort, (ana, bo) = cohort_with_learners(deployment, 2)
    enrollment = deployment.app("enrollment").test_client()
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    now = xapi.utc_now()
    # Bo is withdrawn first; his LMS goes on reporting him finishing: live, no certificate.
    assert enrollment.post(f"/enrolments/{bo['id']}/withdrawal", headers=AUTH, json={}).status_code == 200
    settings = deployment.settings("certification")
    engine = db.create_engine(settings.database_url)
    e = ct.learner_enrolments
    eventually(lambda: _count(engine, e.select().where(e.c.withdrawn_at.is_not(None)).subquery()) == 1)
    produce(deployment, deciding_statements(bo, programme, cohort, now + timedelta(hours=1))
            + deciding_statements(ana, programme, cohort, now + timedelta(hours=1)))
    live = wait_for_certificates(client, 1)
    eventually(lambda: _count(engine, ct.outbox.select().where(ct.outbox.c.published_at.is_(None)).subquery()) == 0)
    time.sleep(2)
    deployment.stop_workers()
    everything = [settings.topic(name) for name in ("enrollment", "lrs", "assessment", "certification")]
    before = _topic_sizes(settings, everything + [settings.dead_letter_topic])
    with db.reading(engine) as conn:
        certificates = conn.execute(sa.select(ct.certificates).order_by(ct.certificates.c.id)).all()
        outbox = _count(engine, ct.outbox)
        view = conn.execute(sa.select(e).order_by(e.c.registration)).all()
    assert [c.registration for c in certificates] == [ana["id"]] == [c["registration"] for c in live]

    runner = ProjectionRunner(settings, engine, CERTIFICATION.projection(settings), CERTIFICATION.offsets,
                              CERTIFICATION.processed)
    # Two processes sharing the partitions (one process: test_certification's rebuild).
    assert runner.rebuild(progress=False, jobs=2) > 0
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(ct.certificates).order_by(ct.certificates.c.id)).all() == certificates
        assert conn.execute(sa.select(e).order_by(e.c.registration)).all() == view
    assert _count(engine, ct.outbox) == outbox  # nothing staged, so nothing for the relay to publish
    assert _topic_sizes(settings, everything + [settings.dead_letter_topic]) == before

    # A replay may meet the topics in another order than the live run did: Bo's
    # completions before his withdrawal. Live, that would issue and then revoke.
    with engine.begin() as conn:
        for table in [*reversed(runner.projection.tables), runner.processed, runner.offsets]:
            conn.execute(table.delete())
    records = bus.read_topics(settings, runner.projection.topics)
    records.sort(key=lambda r: r.topic == settings.topic("enrollment")
                 and events.routing(r.headers)[1] == events.EventType.LEARNER_WITHDREW)
    runner.process(records, engine=replay_engine(engine))
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(ct.certificates).order_by(ct.certificates.c.id)).all() == certificates
    assert _count(engine, ct.outbox) == outbox
    engine.dispose()


# --- worker processes through a database outage -----------------------------------------------

def test_worker_processes_outlive_a_postgresql_outage_and_catch_up_by_themselves(kafka_bootstrap, tmp_path,
                                                                               private_pg):
    from services.enrollment import tables as enrollment_tables
    from tests.support.flows import define_cohort, import_csv, learners_csv

    deployment = Deployment(kafka_bootstrap, tmp_path)
    deployment.env["DATABASE_URL"] = private_pg.url.rsplit("/", 1)[0] + f"/t{deployment.run_id}"
    env = dict(os.environ, **deployment.env, CONSUMER_RETRY_MAX_SECONDS="2")
    workers = []
    try:
        enrollment = deployment.app("enrollment").test_client()
        settings = deployment.settings("progress")
        _, cohort = define_cohort(enrollment)
        import_csv(enrollment, cohort["id"], learners_csv(200))
        for service in ("enrollment", "progress"):
            for part in ("relay", "projections"):
                workers.append(subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", service, "--only",
                                                 part], env=env, stderr=subprocess.DEVNULL))
        engine = db.create_engine(settings.database_url)
        eventually(lambda: _count(engine, progress_tables.learner_enrolments) > 0, 60)
        import_csv(enrollment, cohort["id"], learners_csv(200, start=200))  # under way when the server stops
        private_pg.stop()
        time.sleep(12)
        assert [w.poll() for w in workers] == [None] * len(workers)  # all still running
        private_pg.start()
        eventually(lambda: _count(engine, progress_tables.learner_enrolments) == 400, 120)
        time.sleep(2)  # anything applied twice would show now
        assert _count(engine, progress_tables.learner_enrolments) == 400
        assert [w.poll() for w in workers] == [None] * len(workers)
        on_topic = read_topic(kafka_bootstrap, settings.topic("enrollment"), 402)
        assert len({xapi.decode(r.value)["id"] for r in on_topic}) == 402  # the programme, the cohort, 400
        enrollment_engine = db.create_engine(deployment.settings("enrollment").database_url)
        unpublished = enrollment_tables.outbox.select().where(enrollment_tables.outbox.c.published_at.is_(None))
        eventually(lambda: _count(enrollment_engine, unpublished.subquery()) == 0, 30)
        enrollment_engine.dispose()
        engine.dispose()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        deployment.close()
