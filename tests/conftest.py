"""Fixtures shared by every test: a real broker, a real database, real services."""
from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest

from shared import db
from shared.config import Settings
from shared.service import load
from tests.support.brokers import SessionBroker

CREDENTIALS = {"ops": "ops-secret-for-tests"}
# An operator limited to one organisation unit (key, secret, unit).
UNIT_OPERATOR = ("north-ops", "north-secret", "Revenue agency")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    broker = SessionBroker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker.start()
    finally:
        broker.stop()


class Deployment:
    """One isolated learnstream for one test: its own topic prefix on the shared broker
    and its own databases (SQLite files, or PostgreSQL databases when DATABASE_URL is set)."""

    def __init__(self, bootstrap: str, root: Path, check_records: bool = True):
        self.run_id = uuid.uuid4().hex[:10]
        # At close, every record on the deployment's topics is checked against the event
        # contract (tests.support.contract); a test that publishes malformed records on
        # purpose says so with @pytest.mark.malformed_records.
        self.check_records = check_records
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC_PREFIX": f"t{self.run_id}.",
            "LEARNSTREAM_CREDENTIALS": ",".join([f"{k}:{v}" for k, v in CREDENTIALS.items()]
                                                + [":".join(UNIT_OPERATOR)]),
            "RELAY_IDLE_SECONDS": "0.02",
        }
        base = os.environ.get("DATABASE_URL")
        if base:
            from sqlalchemy.engine import make_url

            url = make_url(base)
            env["DATABASE_URL"] = url.set(database=f"{url.database}_t{self.run_id}").render_as_string(
                hide_password=False)
        else:
            env["DATABASE_URL"] = f"sqlite:///{root / 'db.sqlite'}"
        self.env = env
        self._settings: dict[str, Settings] = {}
        self._workers: list[tuple[threading.Event, threading.Thread]] = []

    def settings(self, service: str, **overrides) -> Settings:
        if service not in self._settings:
            settings = Settings.from_env(service, self.env)
            db.migrate(settings.database_url, load(service).migrations)
            self._settings[service] = settings
        settings = self._settings[service]
        if overrides:
            from dataclasses import replace

            settings = replace(settings, **overrides)
        return settings

    def app(self, service: str):
        app = load(service).create_app(self.settings(service))
        app.testing = True
        return app

    def start_worker(self, service: str, **overrides) -> threading.Event:
        from shared.worker import run_worker

        stop = threading.Event()
        thread = threading.Thread(target=run_worker, args=(self.settings(service, **overrides), load(service), stop),
                                  name=f"worker-{service}", daemon=True)
        thread.start()
        self._workers.append((stop, thread))
        return stop

    def stop_worker(self, stop: threading.Event) -> None:
        """The one worker start_worker gave this event for."""
        for pair in list(self._workers):
            if pair[0] is stop:
                stop.set()
                pair[1].join(timeout=30)
                self._workers.remove(pair)

    def stop_workers(self) -> None:
        for stop, _ in self._workers:
            stop.set()
        for _, thread in self._workers:
            thread.join(timeout=30)
        self._workers.clear()

    def close(self) -> None:
        self.stop_workers()
        try:
            if self.check_records:
                self._check_records()
        finally:
            for settings in self._settings.values():
                db.drop_database(settings.database_url)
            self._delete_topics()

    def _broker_settings(self) -> Settings:
        return Settings(service="progress", database_url="",
                        kafka_bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"])

    def _check_records(self) -> None:
        from shared import bus
        from tests.support import contract

        settings = self._broker_settings()
        if bus.broker_reachable(settings):  # else an outage test stopped it: nothing to read
            contract.check_topics(settings, self.env["KAFKA_TOPIC_PREFIX"])

    def _delete_topics(self) -> None:
        """A test's topics go with it: thousands of leftover partitions over a run (two in
        CI) would exhaust the broker's memory."""
        from shared import bus

        try:
            bus.delete_topics(self._broker_settings(), self.env["KAFKA_TOPIC_PREFIX"])
        except Exception:  # the broker is gone (an outage test): cleanup must never fail a test
            pass


@pytest.fixture
def deployment(kafka_bootstrap, tmp_path, request) -> Deployment:
    deployment = Deployment(kafka_bootstrap, tmp_path,
                            check_records=request.node.get_closest_marker("malformed_records") is None)
    try:
        yield deployment
    finally:
        deployment.close()
