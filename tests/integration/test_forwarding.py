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

from services.forwarding import tables as ft
from services.progress.lrs import auth as lrs_auth
from shared import db, xapi
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


def test_the_api_checks_targets_and_never_shows_a_password(source, target):
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
    assert api.post(f"/targets/{created['id']}/quarantine/replay", headers=AUTH,
                    json={"statement_ids": [modern["id"]]}).json == {"requested": 1}
    eventually(lambda: modern["id"] in target.stored_ids(), message="the replayed statement delivered")
    eventually(lambda: api.get(f"/targets/{created['id']}/quarantine", headers=AUTH).json["total"] == 0)
    resolved = api.get(f"/targets/{created['id']}/quarantine?resolved=true", headers=AUTH).json["items"]
    assert [r["statement_id"] for r in resolved] == [modern["id"]] and resolved[0]["resolved_at"]
    assert sorted(target.stored_ids()) == sorted(s["id"] for s in ordinary + [modern])
    assert target.secret not in caplog.text  # nor anywhere in the logs
