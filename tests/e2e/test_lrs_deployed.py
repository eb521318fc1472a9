"""The LRS as `make run` deploys it: gunicorn with gevent workers, the relay and the
projections as processes of their own. Many clients at once share group commits; each
gets its own answer, and every accepted statement reaches learnstream.lrs.v1."""
from __future__ import annotations

import base64
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests

from services.progress.lrs import auth
from shared import db, xapi
from shared.stack import Stack
from tests.support.flows import read_topic
from tests.support.lrs import statement

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def deployed(deployment):
    env = dict(deployment.env, PROGRESS_PORT=str(_free_port()), LOG_LEVEL="WARNING")
    stack = Stack(env=env, services=("progress",))
    stack.prepare()
    engine = db.create_engine(stack.settings("progress").database_url)
    key, secret = auth.create(engine, "e2e", ["all"])
    engine.dispose()
    stack.start()
    try:
        yield stack, {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode(),
                      "X-Experience-API-Version": "2.0.0", "Content-Type": "application/json"}
    finally:
        stack.stop()


def test_concurrent_clients_under_gevent_workers(deployed):
    stack, headers = deployed
    assert [label for label, _ in stack.processes] == ["progress web", "progress relay", "progress projections"]
    url = f"{stack.url('progress')}/xapi/statements"
    taken = {**statement(1), "id": str(uuid.uuid4())}
    assert requests.post(url, data=orjson.dumps(taken), headers=headers, timeout=10).status_code == 200
    sent = [{**statement(100 + i), "id": str(uuid.uuid4())} for i in range(300)]
    bodies = [[s] if i % 3 else s for i, s in enumerate(sent)]  # some as arrays, some bare
    clash = [{**statement(7), "id": str(uuid.uuid4())}, {**statement(8), "id": taken["id"]}]

    def post(body):
        with requests.Session() as session:
            return session.post(url, data=orjson.dumps(body), headers=headers, timeout=30).status_code
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(post, bodies[:150] + [clash] + bodies[150:]))
    assert statuses[150] == 409
    assert statuses[:150] + statuses[151:] == [200] * 300
    assert requests.get(url, params={"statementId": clash[0]["id"]}, headers=headers, timeout=10).status_code == 404
    for s in sent[::30]:  # a GET after a POST sees it at once
        assert requests.get(url, params={"statementId": s["id"]}, headers=headers, timeout=10).status_code == 200

    topic = stack.settings("progress").topic("lrs")
    records = read_topic(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic, expected=301, timeout=60)
    on_topic = {xapi.decode(r.value)["id"] for r in records}
    assert on_topic >= {s["id"] for s in sent} | {taken["id"]}
    assert clash[0]["id"] not in on_topic
