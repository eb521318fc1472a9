"""A database that cannot be reached is a JSON 503 with Retry-After on every service, in
bounded time, and nothing half-written; the services recover by themselves when it is
back (issue 12, item 2). On a PostgreSQL of the test's own, stopped mid-test; and the
two limits that bound a stuck database: PostgreSQL's statement timeout, SQLite's busy
timeout."""
from __future__ import annotations

import base64
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.progress.lrs import auth as lrs_auth
from shared import db, worker
from shared.config import DatabaseTimeouts, Settings
from shared.http import Blueprint, create_service_app
from shared.service import Loop
from tests.conftest import Deployment
from tests.support.flows import AUTH
from tests.support.postgres import PrivatePostgres

pytestmark = pytest.mark.integration

PROGRAMME = {"code": "OUT", "title": "Outage", "final_test": "https://content.example.org/out/test",
             "required_modules": ["https://content.example.org/out/m1"]}
STATEMENT_ID = str(uuid.uuid4())
STATEMENT = {"id": STATEMENT_ID, "actor": {"objectType": "Agent", "mbox": "mailto:someone@example.org"},
             "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
             "object": {"objectType": "Activity", "id": "https://content.example.org/out/m1"}}


def _reads(lrs_headers: dict) -> list[tuple[str, str, str, dict]]:
    """(service, method, path, options) that each need the database, on every service:
    the Flask views and the LRS's own request handling."""
    return [
        ("enrollment", "GET", "/programmes", {"headers": AUTH}),
        ("progress", "GET", "/cohorts", {"headers": AUTH}),
        ("progress", "GET", "/xapi/statements", {"headers": lrs_headers}),
        ("assessment", "GET", f"/cohorts/{uuid.uuid4()}/results", {"headers": AUTH}),
        ("certification", "GET", "/certificates", {"headers": AUTH}),
        ("certification", "GET", "/verify/some-code.json", {}),
    ]


def _writes(lrs_headers: dict) -> list[tuple[str, str, str, dict]]:
    """A command with its outbox row, and a statement POST (the LRS's WSGI fast path and
    its group commit)."""
    return [
        ("enrollment", "POST", "/programmes", {"headers": AUTH, "json": PROGRAMME}),
        ("progress", "POST", "/xapi/statements", {"headers": dict(lrs_headers, **{
            "Content-Type": "application/json"}), "json": STATEMENT}),
    ]


@pytest.fixture
def outage(kafka_bootstrap, tmp_path, monkeypatch):
    # Not under tmp_path: pytest deletes all but the newest three session directories, and
    # another session starting meanwhile (the machine is shared) deleted the running
    # server's data directory, leaving a server that pg.sh could no longer stop.
    data_dir = Path(tempfile.mkdtemp(prefix="learnstream-outage-pg-"))
    server = PrivatePostgres(data_dir / "pg")
    try:
        monkeypatch.setenv("DATABASE_URL", server.start())
        deployment = Deployment(kafka_bootstrap, tmp_path)
        try:
            yield server, deployment
        finally:
            server.start()  # running again, so the deployment's databases can be dropped
            deployment.close()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_every_service_answers_503_while_postgresql_is_down_then_recovers(outage):
    server, deployment = outage
    apps = {name: deployment.app(name) for name in ("enrollment", "progress", "assessment", "certification")}
    clients = {name: app.test_client() for name, app in apps.items()}
    key, secret = lrs_auth.create(apps["progress"].config["LEARNSTREAM_ENGINE"], "outage", ["all"])
    lrs_headers = {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode(),
                   "X-Experience-API-Version": "2.0.0"}
    reads, writes = _reads(lrs_headers), _writes(lrs_headers)
    for service, method, path, options in reads:  # all fine: the pools hold live connections
        answer = clients[service].open(path, method=method, **options)
        assert answer.status_code in (200, 404), (service, method, path, answer.status_code, answer.text)

    server.stop()
    for service, method, path, options in reads + writes:
        began = time.monotonic()
        answer = clients[service].open(path, method=method, **options)
        took = time.monotonic() - began
        assert answer.status_code == 503, (service, method, path, answer.status_code, answer.text)
        assert answer.is_json and int(answer.headers["Retry-After"]) > 0, (service, path)
        assert "database" in answer.text and "Traceback" not in answer.text
        assert took < 10, (service, method, path, took)
    for service, client in clients.items():
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["missing"] == ["database"], service
        assert ready.headers["Retry-After"]

    server.start()
    for service, method, path, options in reads:
        answer = clients[service].open(path, method=method, **options)
        assert answer.status_code in (200, 404), (service, method, path, answer.status_code, answer.text)
    for service, client in clients.items():
        assert client.get("/readyz").json["checks"]["database"] is True, service
    # The writes refused during the outage left nothing behind; now they go in.
    assert clients["enrollment"].get("/programmes", headers=AUTH).json["total"] == 0
    assert clients["progress"].get(f"/xapi/statements?statementId={STATEMENT_ID}",
                                   headers=lrs_headers).status_code == 404
    for service, method, path, options in writes:
        answer = clients[service].open(path, method=method, **options)
        assert answer.status_code in (200, 201), (service, method, path, answer.status_code, answer.text)


def _sleeper_app(url: str, timeouts: DatabaseTimeouts):
    settings = Settings.from_env("progress", {"PROGRESS_DATABASE_URL": url})
    engine = db.create_engine(url, timeouts=timeouts)
    blp = Blueprint("sleeper", __name__)

    @blp.route("/slow", methods=["GET"])
    def slow():
        with db.reading(engine) as conn:
            conn.execute(sa.text("SELECT pg_sleep(5)"))
        return {}

    @blp.route("/write", methods=["POST"])
    def write():
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
        return {}

    return create_service_app(settings, engine, title="t", description="t", blueprints=[blp]), engine


def test_a_statement_past_the_timeout_is_a_503_not_a_hang(deployment):
    url = deployment.settings("progress").database_url
    if db.is_sqlite(url):
        pytest.skip("PostgreSQL's statement timeout")
    app, engine = _sleeper_app(url, DatabaseTimeouts(statement_seconds=1))
    try:
        began = time.monotonic()
        answer = app.test_client().get("/slow")
        assert answer.status_code == 503 and answer.headers["Retry-After"] and answer.is_json
        assert time.monotonic() - began < 3
    finally:
        engine.dispose()


def test_sqlite_write_lock_not_had_within_the_busy_timeout_is_a_503(tmp_path):
    path = tmp_path / "busy.sqlite"
    url = f"sqlite:///{path}"
    db.ensure_database(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE probe (id INTEGER)")
    app, engine = _sleeper_app(url, DatabaseTimeouts(sqlite_busy_seconds=1))
    try:
        holder.execute("BEGIN IMMEDIATE")  # another program (the sqlite3 shell, say) holds the lock
        began = time.monotonic()
        answer = app.test_client().post("/write", json={})
        assert answer.status_code == 503 and answer.headers["Retry-After"] and answer.is_json
        assert time.monotonic() - began < 3
        holder.execute("ROLLBACK")
        assert app.test_client().post("/write", json={}).status_code == 200
    finally:
        holder.close()
        engine.dispose()


def test_a_database_error_never_carries_the_statements_parameters(deployment):
    """Whatever logs or traceback it reaches: a learner's identifier is a parameter."""
    engine = db.create_engine(deployment.settings("progress").database_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table WHERE actor = :actor"),
                         {"actor": "mailto:someone@example.org"})
        assert "no_such_table" in str(caught.value)  # it still says what failed
        assert "someone@example.org" not in str(caught.value)
    finally:
        engine.dispose()


def test_a_database_error_reaches_the_logs_by_its_class_only(deployment, caplog):
    """PostgreSQL's message names the conflicting key's value even with the parameters
    hidden: the worker's loops log a database error by its class and SQLSTATE only, and
    without its traceback."""
    engine = db.create_engine(deployment.settings("progress").database_url)
    table = f"log_probe_{uuid.uuid4().hex[:8]}"
    actor = "mailto:someone@example.org"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table} (actor VARCHAR(200) PRIMARY KEY)"))
            conn.execute(sa.text(f"INSERT INTO {table} VALUES ('{actor}')"))
        stop = threading.Event()

        def run(settings, engine, stop_loop):
            stop.set()  # one failure is enough: the loop is not started again
            with engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO {table} VALUES ('{actor}')"))

        with caplog.at_level(logging.DEBUG):
            worker._looping(deployment.settings("progress"), engine, Loop("probe", run), stop)()
        failed = [r for r in caplog.records if r.getMessage() == "loop failed; starting it again"]
        postgres = engine.dialect.name == "postgresql"  # the driver's class: psycopg's is finer
        assert [r.error for r in failed] == ["UniqueViolation 23505" if postgres else "IntegrityError"]
        assert not failed[0].exc_info
        assert not [r for r in caplog.records if actor in logging.Formatter().format(r) + str(vars(r))]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
