"""Nothing is lost, nothing is counted twice: broker outages, consumer crashes, poison records."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import sqlalchemy as sa

from services.enrollment import tables as enrollment_tables
from services.progress import tables as progress_tables
from services.progress.service import SERVICE as PROGRESS
from shared import bus, db, events, xapi
from shared.consumer import Projection, ProjectionRunner
from tests.conftest import Deployment
from tests.support.brokers import REPO, LocalBroker
from tests.support.flows import AUTH, cohort_counts, define_cohort, eventually, import_csv, learners_csv, read_topic
from tests.support.statements import first_generation_headers


def _count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def test_writes_succeed_while_the_broker_is_down_and_are_published_when_it_returns(tmp_path):
    broker = LocalBroker(tmp_path / "kafka").start()
    deployment = Deployment(broker.bootstrap, tmp_path)
    try:
        enrollment = deployment.app("enrollment").test_client()
        progress = deployment.app("progress").test_client()
        _, cohort = define_cohort(enrollment)
        deployment.start_worker("enrollment")
        deployment.start_worker("progress")
        import_csv(enrollment, cohort["id"], learners_csv(30))
        eventually(lambda: (cohort_counts(progress, cohort["id"]) or {}).get("enrolled") == 30)

        broker.stop()
        during = import_csv(enrollment, cohort["id"], learners_csv(50, start=30))
        assert during["enrolled"] == 50
        first = enrollment.get(f"/enrolments?cohort_id={cohort['id']}&page_size=1", headers=AUTH).json["items"][0]
        assert enrollment.post(f"/enrolments/{first['id']}/withdrawal", headers=AUTH, json={}).status_code == 200
        engine = db.create_engine(deployment.settings("enrollment").database_url)
        time.sleep(3)  # the relay keeps trying against the dead broker meanwhile
        assert _count(engine, enrollment_tables.outbox, enrollment_tables.outbox.c.published_at.is_(None)) == 51

        broker.start()
        counts = eventually(lambda: (c := cohort_counts(progress, cohort["id"])) and c["withdrawn"] == 1 and c,
                            timeout=120, message="all writes made during the outage projected")
        assert counts["enrolled"] == 79
        assert _count(engine, enrollment_tables.outbox, enrollment_tables.outbox.c.published_at.is_(None)) == 0
        engine.dispose()
        progress_engine = db.create_engine(deployment.settings("progress").database_url)
        assert _count(progress_engine, progress_tables.learner_enrolments) == 80
        progress_engine.dispose()
    finally:
        deployment.close()
        broker.stop()


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the runner catches it."""


def test_a_consumer_that_dies_mid_batch_resumes_with_the_read_model_exactly_right(deployment):
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment)
    import_csv(enrollment, cohort["id"], learners_csv(300))
    deployment.start_worker("enrollment")
    settings = deployment.settings("progress", consumer_max_records=40)
    engine = db.create_engine(settings.database_url)
    real = PROGRESS.projection(settings)
    applied = {"n": 0}

    def dies_half_way(conn, statements):
        # Write half of this run's rows inside the open transaction, then die.
        handler = real.handlers[events.EventType.LEARNER_ENROLLED]
        handler(conn, statements[: len(statements) // 2])
        applied["n"] += 1
        if applied["n"] == 3:
            raise Crash()
        handler(conn, statements[len(statements) // 2:])

    crashing = Projection(topics=real.topics, tables=real.tables,
                          handlers={**real.handlers, events.EventType.LEARNER_ENROLLED: dies_half_way})
    died = threading.Event()

    def run_until_crash():
        try:
            ProjectionRunner(settings, engine, crashing, PROGRESS.offsets, PROGRESS.processed).run(threading.Event())
        except Crash:
            died.set()

    thread = threading.Thread(target=run_until_crash, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert died.is_set()
    partial = _count(engine, progress_tables.learner_enrolments)
    # Nothing of the batch in flight survived: the rows are exactly the enrolments whose
    # statements are recorded as processed (with the offsets, in the same transactions).
    enrollment_engine = db.create_engine(deployment.settings("enrollment").database_url)
    with enrollment_engine.connect() as conn:
        catalog = {xapi.decode(p)["id"] for p in conn.scalars(sa.select(enrollment_tables.outbox.c.payload).where(
            enrollment_tables.outbox.c.event_type != events.EventType.LEARNER_ENROLLED))}
    enrollment_engine.dispose()
    with engine.connect() as conn:
        processed = set(conn.scalars(sa.select(progress_tables.processed_statements.c.statement_id)))
    assert 0 < partial < 300 and partial == len(processed - catalog)

    stop = threading.Event()
    resumed = threading.Thread(
        target=ProjectionRunner(settings, engine, real, PROGRESS.offsets, PROGRESS.processed).run, args=(stop,))
    resumed.start()
    try:
        eventually(lambda: _count(engine, progress_tables.learner_enrolments) == 300)
        time.sleep(1)  # anything double-applied would show up now
        assert _count(engine, progress_tables.learner_enrolments) == 300
        assert _count(engine, progress_tables.processed_statements) == 300 + 2
    finally:
        stop.set()
        resumed.join(timeout=30)
        engine.dispose()


def test_a_killed_worker_process_loses_and_double_counts_nothing(deployment):
    enrollment = deployment.app("enrollment").test_client()
    progress = deployment.app("progress").test_client()
    _, cohort = define_cohort(enrollment)
    total = 3000
    for start in range(0, total, 1000):
        import_csv(enrollment, cohort["id"], learners_csv(1000, start=start))
    deployment.start_worker("enrollment")
    deployment.settings("progress")  # migrated before the worker process starts
    env = dict(os.environ, **deployment.env, CONSUMER_MAX_RECORDS="100", LOG_LEVEL="WARNING")
    engine = db.create_engine(deployment.settings("progress").database_url)
    kills = 0
    try:
        while kills < 3:
            worker = subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "progress"], env=env, cwd=REPO)
            seen = _count(engine, progress_tables.learner_enrolments)
            eventually(lambda seen=seen: _count(engine, progress_tables.learner_enrolments) > seen)
            if _count(engine, progress_tables.learner_enrolments) >= total:
                worker.kill()
                break
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
        worker = subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "progress"], env=env, cwd=REPO)
        eventually(lambda: (cohort_counts(progress, cohort["id"]) or {}).get("enrolled") == total)
        time.sleep(1)
        assert _count(engine, progress_tables.learner_enrolments) == total
        assert _count(engine, progress_tables.processed_statements) == total + 2
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        engine.dispose()
    assert kills >= 1


def test_poison_records_go_to_the_dead_letter_topic_and_consumption_goes_on(deployment):
    enrollment = deployment.app("enrollment").test_client()
    progress = deployment.app("progress").test_client()
    _, cohort = define_cohort(enrollment)
    deployment.start_worker("enrollment")
    bootstrap = deployment.env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = deployment.settings("enrollment").own_topic
    read_topic(bootstrap, topic, expected=2)  # the topic exists with our partitions

    good = xapi.agent(name="Ana", email="ana@example.org")
    handler_breaker = xapi.statement(good, xapi.REGISTERED, xapi.activity("https://x.test/p"),
                                     authority=xapi.service_agent("test"),
                                     registration="00000000-0000-4000-8000-000000000001")  # no grouping, no ext.
    publisher = bus.Publisher(deployment.settings("enrollment"), role="test")
    publisher.publish((topic, b"poison", value, first_generation_headers("test", events.EventType.LEARNER_ENROLLED))
                      for value in (b"\x00not json at all", xapi.encode(handler_breaker)))
    publisher.close()
    import_csv(enrollment, cohort["id"], learners_csv(5))
    deployment.start_worker("progress")

    eventually(lambda: (cohort_counts(progress, cohort["id"]) or {}).get("enrolled") == 5)
    dead = read_topic(bootstrap, deployment.settings("progress").dead_letter_topic, expected=2)
    reasons = sorted(events.header(r.headers, "dead-letter-reason") for r in dead)
    assert len(dead) == 2
    assert reasons[0].startswith("unparseable") and reasons[1].startswith("unprocessable")
    assert {r.value for r in dead} == {b"\x00not json at all", xapi.encode(handler_breaker)}
    assert all(events.header(r.headers, "dead-letter-topic") == topic for r in dead)


def test_only_one_relay_publishes_an_outbox_at_a_time(deployment):
    from shared.lease import RelayLease

    settings = deployment.settings("enrollment")
    engine = db.create_engine(settings.database_url)
    first, second = RelayLease(engine, "relay-test"), RelayLease(engine, "relay-test")
    assert first.try_acquire() and not second.try_acquire()
    first.release()  # as when the first worker's process ends
    assert second.try_acquire()
    second.release()

    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment)
    deployment.start_worker("enrollment")
    deployment.start_worker("enrollment")  # a second instance stands by
    import_csv(enrollment, cohort["id"], learners_csv(300))
    records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.own_topic, expected=302)
    time.sleep(2)  # a second publisher would add duplicates meanwhile
    records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.own_topic, expected=302, timeout=5)
    statement_ids = [xapi.decode(r.value)["id"] for r in records]
    assert len(statement_ids) == len(set(statement_ids)) == 302
    with engine.connect() as conn:
        outbox_order = [xapi.decode(p)["id"] for p in conn.scalars(
            sa.select(enrollment_tables.outbox.c.payload).order_by(enrollment_tables.outbox.c.id))]
    for partition in {r.partition for r in records}:
        on_partition = [xapi.decode(r.value)["id"] for r in records if r.partition == partition]
        assert on_partition == [sid for sid in outbox_order if sid in set(on_partition)]  # in commit order
    engine.dispose()


def test_a_relay_cut_off_from_the_brokers_hands_the_outbox_to_one_that_is_not(deployment):
    """Two hosts' relays on one outbox: the lease holder can reach the database but no
    broker. It lets the lease go, and the standby, which can, publishes every row."""
    from shared.relay import Relay

    settings = deployment.settings("enrollment")
    engine = db.create_engine(settings.database_url)
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment)
    import_csv(enrollment, cohort["id"], learners_csv(50))
    unreachable = dataclasses.replace(settings, kafka_bootstrap_servers="127.0.0.1:1")
    cut_off = Relay(settings, engine, enrollment_tables.outbox, handover_after=2.0,
                    producer_factory=lambda: bus.Publisher(unreachable, **{"message.timeout.ms": 1500}))
    healthy = Relay(settings, engine, enrollment_tables.outbox)
    stop = threading.Event()
    threads = [threading.Thread(target=cut_off.run, args=(stop,), daemon=True)]
    threads[0].start()
    try:
        time.sleep(1.0)  # the cut-off relay holds the lease first
        assert _count(engine, enrollment_tables.outbox, enrollment_tables.outbox.c.published_at.is_(None)) == 52
        threads.append(threading.Thread(target=healthy.run, args=(stop,), daemon=True))
        threads[1].start()
        records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.own_topic, expected=52, timeout=60)
        assert len({xapi.decode(r.value)["id"] for r in records}) == 52
        eventually(lambda: _count(engine, enrollment_tables.outbox,
                                  enrollment_tables.outbox.c.published_at.is_(None)) == 0, 30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        engine.dispose()


def test_the_relay_publishes_while_another_writer_holds_the_outbox(deployment):
    """Marking rows published is a write; on SQLite it waits for the one write lock, and
    on PostgreSQL for row locks. Publishing must not wait with it (on Kafka within a
    second), and the marks must follow once the writer lets go."""
    settings = deployment.settings("enrollment")
    engine = db.create_engine(settings.database_url)
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment)
    import_csv(enrollment, cohort["id"], learners_csv(50))
    outbox = enrollment_tables.outbox
    holding, release = threading.Event(), threading.Event()

    def hold_the_outbox():
        with engine.begin() as conn:  # SQLite: the write lock; PostgreSQL: the rows
            conn.execute(sa.select(outbox.c.id).with_for_update()).all() if conn.dialect.name == "postgresql" \
                else conn.execute(outbox.update().where(outbox.c.id < 0).values(published_at=None))
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_outbox)
    holder.start()
    try:
        assert holding.wait(10)
        # Batches of 10: a relay that waited to mark each batch would stop after the first.
        deployment.start_worker("enrollment", relay_batch_size=10)
        records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.own_topic, expected=52, timeout=20)
        assert len(records) >= 52  # all published while the outbox was held
        with db.reading(engine) as conn:
            assert conn.scalar(sa.select(sa.func.count()).where(outbox.c.published_at.is_not(None))) == 0
    finally:
        release.set()
        holder.join(10)

    def all_marked():
        with db.reading(engine) as conn:
            return conn.scalar(sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))) == 0
    eventually(all_marked, 20, message="rows marked published once the writer let go")
    records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], settings.own_topic, expected=53, timeout=3)
    assert len({xapi.decode(r.value)["id"] for r in records}) == len(records) == 52  # none published twice
    engine.dispose()
