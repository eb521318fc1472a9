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
from shared.stack import Stack, free_port
from tests.support.flows import read_topic
from tests.support.lrs import statement

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(deployment):
    env = dict(deployment.env, PROGRESS_PORT=str(free_port()), LOG_LEVEL="WARNING")
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


def test_requests_gunicorn_refuses_itself_get_json_errors(deployed):
    """A request line or headers too long never reach Flask: gunicorn answers them. The
    answer is JSON naming the problem, as every other error is, not gunicorn's HTML page."""
    stack, headers = deployed
    host, port = stack.url("progress").removeprefix("http://").split(":")

    def raw(request: bytes) -> tuple[int, dict, bytes]:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(request)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), fields, body

    long_line = b"GET /xapi/statements?agent=" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, fields, body = raw(long_line)
    assert status == 414
    assert fields["Content-Type"] == "application/json"
    assert orjson.loads(body)["code"] == 414 and orjson.loads(body)["message"]

    many_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Filler-%d: 1\r\n" % i for i in range(200)) + b"\r\n"
    status, fields, body = raw(many_headers)
    assert status == 431
    assert fields["Content-Type"] == "application/json" and orjson.loads(body)["code"] == 431

    status, fields, body = raw(b"NOT A REQUEST\r\n\r\n")
    assert status == 400 and orjson.loads(body)["code"] == 400

    # The same connection-level path still serves a well-formed request.
    status, _, body = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and orjson.loads(body)["status"] == "ok"
