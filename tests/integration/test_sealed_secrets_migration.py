"""Forwarding targets stored before sealing existed: forwarding's migration 0002 seals
their passwords in place with the service's key, on the database the suite runs on."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from services.forwarding import repository
from shared import db
from shared.config import Settings
from shared.secrets import SEALED
from tests.support.migrations import own_database, seeded_at_then_upgraded

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_passwords_stored_in_clear_are_sealed_by_the_upgrade_and_still_authenticate(deployment):
    url = own_database(deployment, "forwarding_sealed")
    common = dict(url="https://lrs.example.org/xapi", xapi_version="1.0.3", username="fwd", filter={},
                  enabled=True, batch_size=100, timeout_seconds=10.0, revision=1, created_at=T0, updated_at=T0,
                  updated_by="ops")
    engine = seeded_at_then_upgraded(url, "forwarding", "0001", {"targets": [
        common | {"id": "t1", "name": "ministry", "password": "clear-pw"},
        common | {"id": "t2", "name": "open", "password": ""}]})
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT id, password FROM targets")).all())
            assert stored["t1"].startswith(SEALED) and "clear-pw" not in stored["t1"]
            assert stored["t2"] == ""  # no password stays none
            box = Settings.from_env("forwarding", {"FORWARDING_DATABASE_URL": url}).secret_box()
            opened = {target.id: target.password for target in repository.targets(conn, box)}
        assert opened == {"t1": "clear-pw", "t2": ""}
    finally:
        engine.dispose()
        db.drop_database(url)
