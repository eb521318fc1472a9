"""The consumer kit (examples/analytics_consumer.py) against a real broker: a group that
resumes, dedupes by ce_id, replays from offset zero, starts from now, reads records of
both generations of headers and keeps the dead-letter quarantine, resolutions included."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from services.progress.service import SERVICE as PROGRESS
from shared import bus, db, dead_letters, events, xapi
from shared.consumer import ProjectionRunner
from shared.service import load
from tests.support import contract
from tests.support import statements as s
from tests.support.brokers import REPO
from tests.support.flows import AUTH, define_cohort, eventually, import_csv, learners_csv

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "analytics_consumer.py"
NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)


def run_kit(deployment, db_path, *args: str, idle: float = 4.0) -> dict:
    """Run the example to the end of what is there; return its closing summary."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--bootstrap", deployment.env["KAFKA_BOOTSTRAP_SERVERS"],
         "--prefix", deployment.env["KAFKA_TOPIC_PREFIX"], "--db", str(db_path), "--exit-when-idle", str(idle),
         *args], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(db_path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


def _publish(settings, records) -> None:
    publisher = bus.Publisher(settings, role="test")
    try:
        publisher.publish(records)
    finally:
        publisher.close()


@pytest.mark.malformed_records
def test_the_kit_stores_each_statement_once_and_keeps_the_quarantine(deployment, tmp_path):
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment, code="KIT1")
    import_csv(enrollment, cohort["id"], learners_csv(4, domain="kit.example"))
    deployment.start_worker("enrollment")
    settings = deployment.settings("progress")
    bus.ensure_topics(settings, PROGRESS.topics(settings))
    topic = settings.topic("enrollment")
    # A record from before the CloudEvents headers, and one a projection cannot use.
    kind, old = s.enrolled(50, s.new_id(), cohort["id"], NOW, NOW + timedelta(days=9))
    poison = xapi.statement({"objectType": "Group", "member": 5}, xapi.REGISTERED, s.programme_activity(),
                            authority=s.AUTHORITY)
    _publish(settings, [
        (topic, xapi.learner_key(old["actor"]).encode(), xapi.encode(old),
         s.first_generation_headers(contract.TEST_SOURCE, kind)),
        (topic, b"poison", xapi.encode(poison),
         events.headers(contract.TEST_SOURCE, kind, poison["id"], "poison", poison["stored"]))])
    # 2 definitions + 4 enrolments from the relay, the old record: 7 statements; the
    # progress worker dead-letters the poison one.
    deployment.start_worker("progress")
    eventually(lambda: len(bus.read_topics(settings, [settings.dead_letter_topic])) == 1, 60,
               message="the poison record dead-lettered")
    deployment.stop_workers()
    # A replay that still fails: the first dead letter is resolved, a second one appended.
    spec = load("progress")
    runner = ProjectionRunner(settings, db.create_engine(settings.database_url), spec.projection(settings),
                              spec.offsets, spec.processed)
    outcome = dead_letters.replay(runner, dead_letters.quarantined(runner), progress=False)
    runner.engine.dispose()
    assert (outcome.applied, outcome.still_failing) == (0, 1)

    db_path = tmp_path / "analytics.sqlite"
    first = run_kit(deployment, db_path, "--group", "kit", "--dead-letters")
    assert (first["stored"], first["duplicates"], first["dead_letters"], first["resolved"]) == (8, 0, 2, 1)
    stored = dict(rows(db_path, "SELECT ce_id, ce_type FROM statements"))
    assert stored[old["id"]] == "dev.learnstream.enrolment.registered"  # read from `event-type`
    assert stored[poison["id"]] == "dev.learnstream.enrolment.registered"  # it is on the topic all the same
    assert sum(t == "dev.learnstream.enrolment.registered" for t in stored.values()) == 6
    quarantine = rows(db_path, "SELECT ce_id, consumer, resolved FROM dead_letters ORDER BY \"offset\"")
    assert quarantine == [(poison["id"], "progress", "dead-lettered again"), (poison["id"], "progress", None)]

    # The group resumes where it committed: nothing new, nothing read; a republished
    # statement (same ce_id) is read and not stored twice.
    assert run_kit(deployment, db_path, "--group", "kit", "--dead-letters")["stored"] == 0
    relay_record = next(r for r in bus.read_topics(settings, [topic])
                        if events.header(r.headers, events.CE_SOURCE) == "/learnstream/enrollment")
    _publish(settings, [(topic, relay_record.key, relay_record.value, relay_record.headers)])
    again = run_kit(deployment, db_path, "--group", "kit")
    assert (again["stored"], again["duplicates"]) == (0, 1)
    # --from beginning replays from offset zero: everything read, nothing stored again.
    replayed = run_kit(deployment, db_path, "--group", "kit", "--from", "beginning")
    assert (replayed["stored"], replayed["duplicates"]) == (0, 9)
    assert rows(db_path, "SELECT count(*) FROM statements") == [(8,)]


def test_from_now_skips_history_and_takes_what_comes_next(deployment, tmp_path):
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment, code="KIT2")
    import_csv(enrollment, cohort["id"], learners_csv(3, domain="now.example"))
    deployment.start_worker("enrollment")
    topic = deployment.settings("enrollment").own_topic
    eventually(lambda: len(bus.read_topics(deployment.settings("enrollment"), [topic])) == 5, 60)

    db_path = tmp_path / "now.sqlite"
    kit = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--bootstrap", deployment.env["KAFKA_BOOTSTRAP_SERVERS"],
         "--prefix", deployment.env["KAFKA_TOPIC_PREFIX"], "--db", str(db_path), "--group", "now",
         "--from", "now", "--exit-when-idle", "6"], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(kit.stdout), daemon=True)
        reader.start()
        eventually(lambda: any('"assigned"' in line for line in lines), 60, message="the kit assigned partitions")
        later = enrollment.post(f"/cohorts/{cohort['id']}/enrolments", headers=AUTH,
                                json={"name": "Late", "email": "late@now.example"}).json
        assert kit.wait(timeout=90) == 0
        reader.join(timeout=5)
    finally:
        if kit.poll() is None:
            kit.kill()
    summary = json.loads(lines[-1])
    assert summary["stored"] == 1
    [(statement,)] = rows(db_path, "SELECT statement FROM statements")
    assert json.loads(statement)["context"]["registration"] == later["id"]
