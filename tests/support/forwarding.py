"""A forwarding target for the tests: a second learnstream LRS (the progress service's
/xapi, its own database) served over real HTTP on a port of its own, behind a gate that
can make it fail (503 for a while), answer slowly, and count what it was sent."""
from __future__ import annotations

import base64
import io
import threading
import time
import uuid
from pathlib import Path

import orjson
import sqlalchemy as sa
from werkzeug.serving import make_server

from services.progress.lrs import auth as lrs_auth
from services.progress.lrs import tables as lrs_tables
from shared.stack import free_port
from tests.conftest import Deployment
from tests.support.flows import AUTH


class Gate:
    """WSGI middleware in front of the target LRS."""

    def __init__(self, app):
        self.app = app
        self.down_until = 0.0  # time.monotonic(): 503 before it
        self.delay = 0.0       # seconds each statements POST waits before the LRS sees it
        self.in_post = threading.Event()
        self.received: list[str] = []  # statement ids, every POST the LRS saw (redeliveries too)
        self.refused_503 = 0
        self._lock = threading.Lock()

    def fail_for(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds

    def __call__(self, environ, start_response):
        posting = environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/statements")
        if posting and time.monotonic() < self.down_until:
            with self._lock:
                self.refused_503 += 1
            start_response("503 Service Unavailable", [("Content-Type", "application/json"), ("Retry-After", "1")])
            return [b'{"message": "down for maintenance"}']
        if posting:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            sent = orjson.loads(body)
            self.in_post.set()
            try:
                if self.delay:
                    time.sleep(self.delay)
                with self._lock:
                    self.received += [s["id"] for s in (sent if isinstance(sent, list) else [sent])]
                return self.app(environ, start_response)
            finally:
                self.in_post.clear()
        return self.app(environ, start_response)


class TargetLrs:
    """A running second LRS: `url` for the target, `key`/`secret` its credential."""

    def __init__(self, kafka_bootstrap: str, root: Path):
        self.deployment = Deployment(kafka_bootstrap, root, check_records=False)
        app = self.deployment.app("progress")
        self.engine = app.config["LEARNSTREAM_ENGINE"]
        self.key, self.secret = lrs_auth.create(self.engine, "forwarder", ["all"])
        self.gate = Gate(app.wsgi_app)
        app.wsgi_app = self.gate
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xapi"

    def stored_ids(self) -> list[str]:
        """Every statement id the target stored, in the order it stored them."""
        s = lrs_tables.statements
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(s.c.id).order_by(s.c.seq)))

    def close(self) -> None:
        self.server.shutdown()
        self.deployment.close()


def add_target(client, target: TargetLrs, name: str, **settings) -> dict:
    body = {"name": name, "url": target.url, "xapi_version": "2.0.0", "username": target.key,
            "password": target.secret, **settings}
    response = client.post("/targets", headers=AUTH, json=body)
    assert response.status_code == 201, response.json
    return response.json


def lrs_headers(key: str, secret: str, version: str = "2.0.0") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode(),
            "X-Experience-API-Version": version}


def completed(learner: int, module: int, domain: str = "example.org", verb: str = "completed") -> dict:
    return {"id": str(uuid.uuid4()), "actor": {"objectType": "Agent", "mbox": f"mailto:learner{learner}@{domain}"},
            "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb}},
            "object": {"objectType": "Activity", "id": f"https://content.example.org/modules/{module}"}}
