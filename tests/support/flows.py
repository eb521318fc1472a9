"""Helpers tests use to drive learnstream through its real interfaces."""
from __future__ import annotations

import base64
import time

from shared import bus
from shared.config import Settings
from tests.conftest import CREDENTIALS

AUTH = {"Authorization": "Basic " + base64.b64encode(f"ops:{CREDENTIALS['ops']}".encode()).decode()}


def eventually(check, timeout: float = 120.0, interval: float = 0.1, message: str = "condition"):
    """Poll until `check()` returns a truthy value (read models follow the bus)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not reached in {timeout}s (last: {last!r})")


def define_cohort(client, code="DS1", modules=2, accounts_issued_at="2026-11-02") -> tuple[dict, dict]:
    programme = client.post("/programmes", headers=AUTH, json={
        "code": code, "title": f"Digital skills {code}",
        "required_modules": [f"https://learnstream.test/{code}/modules/{i}" for i in range(1, modules + 1)],
        "final_test": f"https://learnstream.test/{code}/final-test"})
    assert programme.status_code == 201, programme.json
    cohort = client.post("/cohorts", headers=AUTH, json={
        "programme_id": programme.json["id"], "name": f"{code} wave 1", "agency": "Revenue agency",
        "province": "North", "wave": 1, "accounts_issued_at": accounts_issued_at})
    assert cohort.status_code == 201, cohort.json
    return programme.json, cohort.json


def learners_csv(count: int, start: int = 0, domain: str = "example.org") -> str:
    rows = ["name,email,organisation"]
    rows += [f"Learner {i},learner{i}@{domain},Unit {i % 7}" for i in range(start, start + count)]
    return "\n".join(rows) + "\n"


def import_csv(client, cohort_id: str, text: str) -> dict:
    response = client.post(f"/cohorts/{cohort_id}/enrolments/import", headers=AUTH, data=text,
                           content_type="text/csv")
    assert response.status_code == 200, response.json
    return response.json


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list:
    """Every record on a topic, read from offset zero, once at least `expected` are there."""
    settings = Settings(service="progress", database_url="", kafka_bootstrap_servers=bootstrap)
    records: list[bus.Record] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = bus.read_topics(settings, [topic])
        if len(records) >= expected:
            break
        time.sleep(0.3)
    return records


def cohort_counts(progress_client, cohort_id: str) -> dict | None:
    response = progress_client.get(f"/cohorts/{cohort_id}", headers=AUTH)
    return response.json if response.status_code == 200 else None
