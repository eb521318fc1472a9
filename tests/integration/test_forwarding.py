"""Forwarding to other LRSs (issue 15, part 5), with real parts: the target is a second
learnstream LRS on a port of its own with its own database, the broker is real, and the
forwarder is the forwarding service's worker (a thread, or a process killed with -9)."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from services.forwarding import projections
from services.forwarding import tables as ft
from services.forwarding.domain import Filter
from services.progress import tables as pt
from services.progress.lrs import auth as lrs_auth
from shared import db, xapi
from shared.cli import main as cli_main
from shared.secrets import SEALED
from tests.support.brokers import REPO
from tests.support.flows import AUTH, define_cohort, eventually, import_csv, learners_csv
from tests.support.forwarding import TargetLrs, add_target, completed, lrs_headers

pytestmark = pytest.mark.integration


@pytest.fixture
def target(kafka_bootstrap, tmp_path):
    lrs = TargetLrs(kafka_bootstrap, tmp_path / "target")
    try:
        yield lrs
    finally:
        lrs.close()


@pytest.fixture
def source(deployment):
    """The source LRS (progress) with a credential, and the forwarding API."""
    progress = deployment.app("progress")
    key, secret = lrs_auth.create(progress.config["LEARNSTREAM_ENGINE"], "player", ["all"])
    return progress.test_client(), lrs_headers(key, secret), deployment.app("forwarding").test_client()


def _post(lrs, headers, statements):
    response = lrs.post("/xapi/statements", json=statements, headers=headers)
    assert response.status_code == 200, response.json


def test_the_api_checks_targets_and_never_shows_a_password(deployment, source, target):
    _, _, api = source
    assert api.get("/targets").status_code == 401
    created = add_target(api, target, "ministry", filter={"verbs": ["http://adlnet.gov/expapi/verbs/completed"]})
    assert "password" not in created and created["has_password"] is True
    assert created["filter"]["verbs"] == ["http://adlnet.gov/expapi/verbs/completed"]
    for bad, field in [({"url": "ftp://x"}, "url"), ({"url": "https://k:s@x/xapi"}, "url"),
                       ({"xapi_version": "0.9"}, "xapi_version"), ({"batch_size": 0}, "batch_size"),
                       ({"filter": {"event_types": ["nope"]}}, "filter"), ({"colour": "red"}, "colour")]:
        body = {"name": "other", "url": "http://127.0.0.1:1/xapi", **bad}
        response = api.post("/targets", headers=AUTH, json=body)
        assert response.status_code == 422, (bad, response.json)
        assert field in str(response.json["errors"]), response.json
    clash = api.post("/targets", headers=AUTH, json={"name": "ministry", "url": "http://127.0.0.1:1/xapi"})
    assert clash.status_code == 409 and clash.json["errors"]["json"] == {"name": [clash.json["message"]]}
    assert api.get("/targets/nope", headers=AUTH).status_code == 404
    changed = api.put(f"/targets/{created['id']}", headers=AUTH, json={"name": "ministry", "url": target.url,
                                                                        "username": target.key})
    assert changed.status_code == 200 and changed.json["has_password"] is True and changed.json["revision"] == 2
    everything = str(api.get("/targets", headers=AUTH).json) + api.get("/forwarding", headers=AUTH).text
    assert target.secret not in everything and "ministry" in everything
    assert target.secret not in api.get("/openapi.json").text
    # At rest it is sealed: the database (or a copy of it) holds no password.
    engine = deployment.app("forwarding").config["LEARNSTREAM_ENGINE"]
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(ft.targets.c.password).where(ft.targets.c.id == created["id"]))
    assert stored.startswith(SEALED) and target.secret not in stored
    assert api.delete(f"/targets/{created['id']}", headers=AUTH).status_code == 204
    assert api.get("/targets", headers=AUTH).json["total"] == 0


def test_a_refused_statement_is_quarantined_and_a_replay_after_the_fix_delivers_it(deployment, source, target,
                                                                                  caplog):
    lrs, headers, api = source
    caplog.set_level(logging.DEBUG)
    # The target speaks 1.0.3 by mistake: a statement using 2.0.0's contextAgents is refused (400).
    created = add_target(api, target, "ministry", xapi_version="1.0.3", batch_size=10)
    ordinary = [completed(i, 1) for i in range(25)]
    modern = dict(completed(99, 1), context={"contextAgents": [{"objectType": "contextAgent", "agent": {
        "objectType": "Agent", "mbox": "mailto:coach@example.org"}}]})
    _post(lrs, headers, ordinary[:12] + [modern] + ordinary[12:])
    deployment.start_worker("progress")
    deployment.start_worker("forwarding")
    eventually(lambda: len(target.stored_ids()) == 25, message="every other statement delivered")
    quarantined = eventually(lambda: (q := api.get(f"/targets/{created['id']}/quarantine", headers=AUTH).json)
                             ["total"] == 1 and q)
    (item,) = quarantined["items"]
    assert item["statement_id"] == modern["id"] and item["status"] == 400 and item["response"]
    assert item["topic"].endswith("learnstream.lrs.v1") and item["statement"]["id"] == modern["id"]
    assert modern["id"] not in target.stored_ids()
    status = api.get(f"/targets/{created['id']}", headers=AUTH).json["status"]
    assert status["quarantined"] == 1 and status["delivered"] == 25

    # Replaying before the fix: refused again, still in quarantine, with the new answer.
    assert api.post(f"/targets/{created['id']}/quarantine/replay", headers=AUTH, json={}).json == {"requested": 1}
    eventually(lambda: api.get(f"/targets/{created['id']}/quarantine", headers=AUTH).json["items"][0]["attempts"] == 2)
    # The fix: the target is set to 2.0.0; then the replay delivers it, once.
    fixed = api.put(f"/targets/{created['id']}", headers=AUTH, json={
        "name": "ministry", "url": target.url, "username": target.key, "xapi_version": "2.0.0", "batch_size": 10})
    assert fixed.status_code == 200
    # From the operator's shell this time: the CLI sees and asks what the API does.
    shell = CliRunner()
    listed = shell.invoke(cli_main, ["forwarding", "quarantine", "ministry"], env=deployment.env)
    assert listed.exit_code == 0 and "1 in quarantine" in listed.output and modern["id"] in listed.output
    overview = shell.invoke(cli_main, ["forwarding", "targets"], env=deployment.env)
    assert overview.exit_code == 0 and "quarantined 1" in overview.output and target.secret not in overview.output
    unknown = shell.invoke(cli_main, ["forwarding", "replay", "nobody"], env=deployment.env)
    assert unknown.exit_code == 2 and "no target named" in unknown.output
    replayed = shell.invoke(cli_main, ["forwarding", "replay", "ministry", "--statement", modern["id"]],
                            env=deployment.env)
    assert replayed.exit_code == 0 and "1 statements marked for replay" in replayed.output, replayed.output
    eventually(lambda: modern["id"] in target.stored_ids(), message="the replayed statement delivered")
    eventually(lambda: api.get(f"/targets/{created['id']}/quarantine", headers=AUTH).json["total"] == 0)
    resolved = api.get(f"/targets/{created['id']}/quarantine?resolved=true", headers=AUTH).json["items"]
    assert [r["statement_id"] for r in resolved] == [modern["id"]] and resolved[0]["resolved_at"]
    assert sorted(target.stored_ids()) == sorted(s["id"] for s in ordinary + [modern])
    assert target.secret not in caplog.text  # nor anywhere in the logs


def _count(engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def _order_per_learner(ids: list[str], by_id: dict[str, dict]) -> dict[str, list[str]]:
    per = defaultdict(list)
    for sid in ids:
        s = by_id[sid]
        per[s["actor"]["mbox"]].append(s["object"]["id"])
    return per


def test_a_target_down_for_30_s_gets_every_matching_statement_once_in_order_while_the_others_go_on(
        deployment, source, target, kafka_bootstrap, tmp_path):
    lrs, headers, api = source
    enrollment = deployment.app("enrollment").test_client()
    programme, revenue = define_cohort(enrollment)
    tax = enrollment.post("/cohorts", headers=AUTH, json={
        "programme_id": programme["id"], "name": "Tax wave 1", "agency": "Tax agency", "province": "South",
        "wave": 1, "accounts_issued_at": "2026-11-02"}).json
    import_csv(enrollment, revenue["id"], learners_csv(10))
    import_csv(enrollment, tax["id"], learners_csv(10, start=10))
    archive = TargetLrs(kafka_bootstrap, tmp_path / "archive")
    try:
        ministry = add_target(api, target, "ministry", batch_size=7, filter={
            "agencies": ["Revenue agency"], "verbs": ["http://adlnet.gov/expapi/verbs/completed"]})
        add_target(api, archive, "archive", filter={"event_types": ["lrs.statement"]})
        # Down until the test has seen it retried, and for 30 s at least: a loaded machine
        # must not end the outage before the status could show it.
        target.gate.fail_for(float("inf"))
        outage_began = time.monotonic()
        deployment.start_worker("enrollment")
        deployment.start_worker("progress")
        deployment.start_worker("forwarding", consumer_retry_max_seconds=4)
        # The learners are enrolled before they learn: the forwarder judges an agency from
        # the enrolments on the bus, and one still in enrollment's outbox is not there yet.
        engine = api.application.config["LEARNSTREAM_ENGINE"]
        eventually(lambda: _count(engine, ft.enrolments) == 20, message="the enrolments forwarding knows")
        sent = []
        for module in range(1, 5):  # each learner's modules in order, one POST per module
            batch = [completed(n, module) for n in range(20)] + [completed(n, module, verb="experienced")
                                                                 for n in range(0, 20, 3)]
            _post(lrs, headers, batch)
            sent += batch
        # The other target goes on: it gets every statement while the ministry is down.
        eventually(lambda: len(archive.stored_ids()) == len(sent), message="archive forwarding during the outage")
        assert target.stored_ids() == []
        status = eventually(lambda: (s := api.get(f"/targets/{ministry['id']}", headers=AUTH).json["status"])
                            and s["retrying"] and s["lag"] > 0 and s)
        assert "503" in status["last_error"]
        assert "retrying" in api.get("/forwarding", headers=AUTH).text
        metrics = api.get("/metrics").text
        assert 'learnstream_forwarding_lag{target="ministry"}' in metrics
        assert 'learnstream_forwarding_retrying{target="ministry"} 1.0' in metrics
        time.sleep(max(0.0, 30 - (time.monotonic() - outage_began)))
        outage = time.monotonic() - outage_began
        target.gate.fail_for(0)  # the target is back

        wanted = [s for s in sent if s["verb"]["id"].endswith("/completed") and int(
            s["actor"]["mbox"].split("learner")[1].split("@")[0]) < 10]
        eventually(lambda: len(target.stored_ids()) >= len(wanted), message="ministry caught up")
        time.sleep(1.5)  # anything sent twice or outside the filter would show now
        stored = target.stored_ids()
        by_id = {s["id"]: s for s in sent}
        assert sorted(stored) == sorted(s["id"] for s in wanted)  # once each, nothing outside the filter
        assert all(order == [f"https://content.example.org/modules/{m}" for m in range(1, 5)]
                   for order in _order_per_learner(stored, by_id).values())
        assert len(_order_per_learner(stored, by_id)) == 10
        # Retried with capped backoff: a try every few seconds, not a flood.
        # (backoff capped at 4 s: about one try in 4 s once it has grown, never one a second)
        assert 4 <= target.gate.refused_503 <= 5 + outage / 2, (target.gate.refused_503, outage)
        assert eventually(lambda: (s := api.get(f"/targets/{ministry['id']}", headers=AUTH).json["status"])
                          and not s["retrying"] and s["lag"] == 0 and s)["delivered"] == len(wanted)
        assert sorted(archive.stored_ids()) == sorted(s["id"] for s in sent)
    finally:
        deployment.stop_workers()
        archive.close()


def test_a_statement_whose_enrolment_is_still_in_an_outbox_is_forwarded_once_it_is_published(
        deployment, source, target):
    """By agency, a statement of no enrolment known yet waits: its enrolment was committed
    before it, but enrollment's relay has not published it (here: not started). Once it
    is, the statement goes; one of a learner never enrolled is judged after the wait, not
    sent, and holds nothing up for good."""
    lrs, headers, api = source
    enrollment = deployment.app("enrollment").test_client()
    _, revenue = define_cohort(enrollment)
    import_csv(enrollment, revenue["id"], learners_csv(3))  # committed; in enrollment's outbox
    add_target(api, target, "ministry", filter={"agencies": ["Revenue agency"]})
    deployment.start_worker("progress")
    deployment.start_worker("forwarding", forwarding_enrolment_wait_seconds=12)
    enrolled, stranger = completed(0, 1), completed(99, 1)
    _post(lrs, headers, [enrolled, stranger])
    time.sleep(3)  # the forwarder has both now, and knows no enrolment
    assert target.stored_ids() == []
    deployment.start_worker("enrollment")  # its relay publishes the enrolments (forwarded too: by agency)
    eventually(lambda: enrolled["id"] in target.stored_ids(), message="the enrolled learner's statement")
    later = completed(1, 2)
    _post(lrs, headers, [later])
    eventually(lambda: later["id"] in target.stored_ids(), message="a statement after the stranger's")
    time.sleep(1)
    assert stranger["id"] not in target.stored_ids()
    assert len(target.stored_ids()) == 5  # the three enrolments, the two statements
    deployment.stop_workers()


def test_a_forwarder_stopped_while_it_waits_for_an_enrolment_commits_nothing_of_that_batch(
        deployment, source, target):
    lrs, headers, api = source
    enrollment = deployment.app("enrollment").test_client()
    _, revenue = define_cohort(enrollment)
    import_csv(enrollment, revenue["id"], learners_csv(2))  # in enrollment's outbox
    add_target(api, target, "ministry", filter={"agencies": ["Revenue agency"]})
    deployment.start_worker("progress")
    forwarder = deployment.start_worker("forwarding", forwarding_enrolment_wait_seconds=60)
    statement = completed(0, 1)
    _post(lrs, headers, [statement])
    engine = api.application.config["LEARNSTREAM_ENGINE"]
    time.sleep(3)  # the forwarder has it now, and waits for its enrolment
    deployment.stop_worker(forwarder)  # mid-wait: the statement must not count as judged
    with engine.connect() as conn:  # no offset moved past it (the lag's rows start at 0)
        assert conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(ft.target_offsets.c.next_offset), 0))) == 0
    deployment.start_worker("enrollment")
    progress = deployment.app("progress").config["LEARNSTREAM_ENGINE"]
    eventually(lambda: _count(progress, pt.learner_enrolments) == 2, message="the enrolments on the bus")
    deployment.start_worker("forwarding", forwarding_enrolment_wait_seconds=20)
    eventually(lambda: statement["id"] in target.stored_ids(), message="the statement after the restart")
    deployment.stop_workers()


def test_a_forwarder_killed_mid_batch_loses_nothing_and_doubles_nothing(deployment, source, target):
    lrs, headers, api = source
    add_target(api, target, "ministry", batch_size=25)
    sent = []
    for round_ in range(10):  # 100 learners, 10 statements each, in order
        batch = [completed(n, round_) for n in range(100)]
        _post(lrs, headers, batch)
        sent += batch
    deployment.start_worker("progress")
    deployment.settings("forwarding")  # migrated before the process starts
    target.gate.delay = 0.05
    env = dict(os.environ, **deployment.env, CONSUMER_MAX_RECORDS="300", LOG_LEVEL="WARNING")
    argv = [sys.executable, "-m", "shared.cli", "worker", "forwarding", "--only", "projections"]
    kills = 0
    worker = None
    try:
        for _ in range(1):  # one kill: each costs the group's session timeout (10 s) before the next member runs
            worker = subprocess.Popen(argv, env=env, cwd=REPO)
            seen = len(target.stored_ids())
            # Mid-batch: while the target is in the middle of a POST from it.
            eventually(lambda seen=seen: len(target.stored_ids()) > seen + 50 and target.gate.in_post.is_set(),
                       interval=0.01, message="the forwarder mid-batch")
            if len(target.stored_ids()) >= len(sent):
                break
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
        target.gate.delay = 0
        worker = subprocess.Popen(argv, env=env, cwd=REPO)
        eventually(lambda: len(target.stored_ids()) >= len(sent), message="everything delivered after the kills")
        time.sleep(1.5)
        stored = target.stored_ids()
        assert len(stored) == len(sent) and set(stored) == {s["id"] for s in sent}  # nothing missing or doubled
        by_id = {s["id"]: s for s in sent}
        assert all(order == [f"https://content.example.org/modules/{m}" for m in range(10)]
                   for order in _order_per_learner(stored, by_id).values())
        # The kills cost redeliveries (sent again after the crash), which the ids made harmless.
        assert len(target.gate.received) > len(sent)
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
    assert kills >= 1


def test_a_statements_cohorts_come_from_its_registration_else_from_its_learner(deployment):
    engine = db.create_engine(deployment.settings("forwarding").database_url)
    learner = {"objectType": "Agent", "mbox": "mailto:learner1@example.org"}
    key = xapi.learner_key(learner)
    try:
        with engine.begin() as conn:
            conn.execute(ft.cohorts.insert(), [{"id": "c1", "agency": "Revenue agency"}, {"id": "c2", "agency": None}])
            conn.execute(ft.enrolments.insert(), [
                {"registration": "r1", "learner_key": key, "cohort_id": "c1", "agency": None},
                {"registration": "r2", "learner_key": key, "cohort_id": "c2", "agency": "Tax agency"}])
        base = completed(1, 1)
        by_registration = dict(base, context={"registration": "R2"})
        unknown = completed(2, 1)
        with engine.connect() as conn:
            found = projections.facts(conn, [(None, base), (None, by_registration), (None, unknown)])
        assert found[0].cohorts == {"c1", "c2"} and found[0].agencies == {"Revenue agency", "Tax agency"}
        assert found[1].cohorts == {"c2"} and found[1].agencies == {"Tax agency"}
        assert found[2].cohorts == set() and not Filter(agencies=("Tax agency",)).matches(found[2])
    finally:
        engine.dispose()
