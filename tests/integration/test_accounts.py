"""Accounts at run time (issue 14): made through enrollment's admin API, on every service
within seconds over the accounts topic, refused everywhere once disabled; the audit
trail records each change once; an agency operator sees only their units."""
from __future__ import annotations

import base64
import csv
import io

import pytest
from click.testing import CliRunner

from shared import account_tables, accounts, db, xapi
from shared.cli import main
from shared.service import load
from tests.conftest import UNIT_OPERATOR
from tests.support.flows import AUTH, define_cohort, eventually

SERVICES = ("enrollment", "progress", "assessment", "certification", "forwarding")
# A read each service answers for a campaign admin and an auditor.
READS = {"enrollment": "/programmes", "progress": "/campaign", "assessment": "/programmes/x/results",
         "certification": "/standings", "forwarding": "/targets"}
UNIT_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{UNIT_OPERATOR[0]}:{UNIT_OPERATOR[1]}".encode()).decode()}


def _basic(key: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def _clients(deployment):
    return {service: deployment.app(service).test_client() for service in SERVICES}


def _statuses(clients, headers) -> dict[str, int]:
    return {service: clients[service].get(READS[service], headers=headers).status_code for service in SERVICES}


@pytest.mark.timeout(300)
def test_an_account_works_everywhere_within_seconds_and_a_disabled_or_rotated_key_nowhere(deployment):
    for service in SERVICES:
        deployment.start_worker(service)
    clients = _clients(deployment)
    created = clients["enrollment"].post("/accounts", headers=AUTH, json={
        "role": "auditor", "display_name": "Ministry audit", "locale": "vi"})
    assert created.status_code == 201, created.json
    key, secret = created.json["key"], created.json["secret"]
    assert created.json["role"] == "auditor" and "secret_hash" not in created.json
    assert "secret" not in clients["enrollment"].get(f"/accounts/{key}", headers=AUTH).json
    auth = _basic(key, secret)
    eventually(lambda: set(_statuses(clients, auth).values()) == {200}, timeout=30,
               message="the new account accepted by every service")
    # An auditor changes nothing.
    refused = clients["enrollment"].post("/programmes", headers=auth, json={})
    assert refused.status_code == 403 and "manage_programmes" in refused.json["message"]

    rotated = clients["enrollment"].post(f"/accounts/{key}/secret", headers=AUTH)
    assert rotated.status_code == 200 and rotated.json["secret"] != secret
    new_auth = _basic(key, rotated.json["secret"])
    eventually(lambda: set(_statuses(clients, auth).values()) == {401}
               and set(_statuses(clients, new_auth).values()) == {200}, timeout=30,
               message="the old secret refused and the new one accepted everywhere")

    disabled = clients["enrollment"].post(f"/accounts/{key}/disable", headers=AUTH)
    assert disabled.status_code == 200 and disabled.json["disabled"] is True
    eventually(lambda: set(_statuses(clients, new_auth).values()) == {401}, timeout=15,
               message="the disabled key refused by every service")
    assert clients["enrollment"].post(f"/accounts/{key}/disable", headers=AUTH).status_code == 409

    # The audit trail: each change once, with who, what, when and from where.
    trail = clients["enrollment"].get("/audit", headers=AUTH, query_string={"actor": "ops"}).json["items"]
    actions = [(entry["action"], entry["target"]) for entry in trail]
    assert actions == [("POST /accounts", ""), ("POST /accounts/<key>/secret", f"key={key}"),
                       ("POST /accounts/<key>/disable", f"key={key}")]
    assert all(e["role"] == "campaign_admin" and e["remote_addr"] == "127.0.0.1" and e["status"] < 400
               and e["at"] for e in trail)
    exported = list(csv.DictReader(io.StringIO(clients["enrollment"].get("/audit.csv", headers=AUTH).text)))
    assert [row["action"] for row in exported] == [a for a, _ in actions]
    # The accounts topic's records went through the contract check at close (conftest).


def test_every_change_is_audited_once_and_reads_are_not(deployment):
    client = deployment.app("enrollment").test_client()
    programme, cohort = define_cohort(client)
    client.get("/programmes", headers=AUTH)
    enrolled = client.post(f"/cohorts/{cohort['id']}/enrolments", headers=AUTH,
                           json={"name": "Bùi Gia Ánh", "email": "anh@example.org", "organisation": "Revenue agency"})
    client.post(f"/enrolments/{enrolled.json['id']}/withdrawal", headers=AUTH, json={"reason": "moved"})
    client.post(f"/enrolments/{enrolled.json['id']}/withdrawal", headers=AUTH, json={"reason": "again"})  # 409
    trail = client.get("/audit", headers=AUTH).json
    assert [e["action"] for e in trail["items"]] == [
        "POST /programmes", "POST /cohorts", "POST /cohorts/<cohort_id>/enrolments",
        "POST /enrolments/<enrolment_id>/withdrawal"]
    assert "Bùi" not in str(trail) and "anh@example.org" not in str(trail)
    # The auditor reads it; an agency operator does not.
    assert client.get("/audit", headers=UNIT_AUTH).status_code == 403


def test_an_agency_operator_sees_nothing_of_other_units_in_enrollment(deployment):
    client = deployment.app("enrollment").test_client()
    _, ours = define_cohort(client, code="OURS")
    theirs = client.post("/cohorts", headers=AUTH, json={
        "programme_id": ours["programme_id"], "name": "elsewhere", "agency": "Customs agency", "province": "South",
        "wave": 1, "accounts_issued_at": "2026-11-02"}).json
    for cohort in (ours, theirs):
        client.post(f"/cohorts/{cohort['id']}/enrolments", headers=AUTH, json={
            "name": f"Learner of {cohort['name']}", "email": f"{cohort['id']}@example.org", "organisation": "x"})
    assert [c["id"] for c in client.get("/cohorts", headers=UNIT_AUTH).json["items"]] == [ours["id"]]
    assert {e["cohort_id"] for e in client.get("/enrolments", headers=UNIT_AUTH).json["items"]} == {ours["id"]}
    other = client.get(f"/cohorts/{theirs['id']}", headers=UNIT_AUTH)
    assert other.status_code == 404 and "elsewhere" not in other.text
    their_enrolment = client.get("/enrolments", headers=AUTH, query_string={"cohort_id": theirs["id"]}).json["items"][0]
    hidden = client.get(f"/enrolments/{their_enrolment['id']}", headers=UNIT_AUTH)
    assert hidden.status_code == 404 and "example.org" not in hidden.text
    assert client.get(f"/enrolments?cohort_id={theirs['id']}", headers=UNIT_AUTH).json["items"] == []
    # An operator of several units (by agency or by province) sees each of them.
    made = client.post("/accounts", headers=AUTH,
                       json={"role": "agency_operator", "units": ["Revenue agency", "South"]})
    both = _basic(made.json["key"], made.json["secret"])
    seen = eventually(lambda: client.get("/cohorts", headers=both).json.get("items"), timeout=10)
    assert {c["id"] for c in seen} == {ours["id"], theirs["id"]}


def test_an_lms_client_runs_final_tests_only_for_the_cohorts_it_is_granted(deployment):
    app = deployment.app("assessment")
    engine = db.create_engine(deployment.settings("assessment").database_url)
    tables = load("assessment").metadata.tables
    client_account = accounts.new_account("lms-1", "Portal", "portal-secret", "test", xapi.utc_now(),
                                          role="lms_client", cohorts=["granted-cohort"])
    try:
        with engine.begin() as conn:
            account_tables.store(conn, tables["accounts"], [client_account])
            for registration, cohort in (("reg-granted", "granted-cohort"), ("reg-other", "other-cohort")):
                conn.execute(tables["known_enrolments"].insert().values(
                    registration=registration, programme_id="p", cohort_id=cohort, learner_key="k" + registration,
                    final_test="https://x.test/ft", actor={}, programme={}, cohort=None, status="enrolled"))
    finally:
        engine.dispose()
    client = app.test_client()
    auth = _basic("lms-1", "portal-secret")
    other = client.post("/attempts", headers=auth, json={"registration": "reg-other"})
    assert other.status_code == 403 and "not granted" in other.json["message"]
    granted = client.post("/attempts", headers=auth, json={"registration": "reg-granted"})
    assert granted.status_code not in (401, 403), granted.json  # no final test defined: the command's own answer
    assert client.get("/cohorts/granted-cohort/results", headers=auth).status_code == 403


def test_the_cli_creates_changes_rotates_and_disables(deployment, monkeypatch):
    for name, value in deployment.env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    made = runner.invoke(main, ["accounts", "create", "--role", "agency_operator", "--unit", "Revenue agency",
                                "--key", "cli-north", "--name", "North office"])
    assert made.exit_code == 0, made.output
    assert "secret:" in made.output and "Revenue agency" in made.output
    changed = runner.invoke(main, ["accounts", "change", "cli-north", "--unit", "Revenue agency", "--unit", "South"])
    assert changed.exit_code == 0 and "South" in changed.output, changed.output
    refused = runner.invoke(main, ["accounts", "change", "cli-north", "--role", "auditor", "--unit", "x"])
    assert refused.exit_code != 0 and "only an agency operator" in refused.output
    assert runner.invoke(main, ["accounts", "rotate", "cli-north"]).exit_code == 0
    assert runner.invoke(main, ["accounts", "disable", "cli-north"]).exit_code == 0
    listed = runner.invoke(main, ["accounts", "list"])
    assert "cli-north" in listed.output and "disabled" in listed.output
    assert "accounts" in runner.invoke(main, ["--help"]).output
    client = deployment.app("enrollment").test_client()
    assert client.get("/accounts/cli-north", headers=AUTH).json["version"] == 4
    trail = client.get("/audit", headers=AUTH).json["items"]
    assert [(e["action"], e["target"], e["remote_addr"]) for e in trail] == [
        (f"learnstream accounts {what}", "key=cli-north", "local")
        for what in ("create", "change", "rotate", "disable")]
    assert all(e["actor"].startswith("cli:") for e in trail)


def test_an_lms_client_account_is_an_lrs_client_with_its_scopes(deployment):
    engine = db.create_engine(deployment.settings("progress").database_url)
    table = load("progress").metadata.tables["accounts"]
    lms = accounts.new_account("lms-x", "Portal", "portal-secret", "test", xapi.utc_now(), role="lms_client",
                               scopes=["statements/write"])
    auditor = accounts.new_account("aud-x", "Audit", "audit-secret", "test", xapi.utc_now(), role="auditor")
    try:
        with engine.begin() as conn:
            account_tables.store(conn, table, [lms, auditor])
        client = deployment.app("progress").test_client()
        statement = {"actor": {"mbox": "mailto:a@example.org"},
                     "verb": {"id": "http://adlnet.gov/expapi/verbs/progressed"},
                     "object": {"id": "https://content.example.org/m/1"}}
        xapi_headers = {"X-Experience-API-Version": "1.0.3"}
        lms_auth = _basic("lms-x", "portal-secret") | xapi_headers
        posted = client.post("/xapi/statements", json=statement, headers=lms_auth)
        assert posted.status_code == 200, posted.text
        read = client.get("/xapi/statements", headers=lms_auth)
        assert read.status_code == 403 and "scope" in read.text
        assert client.post("/xapi/statements", json=statement,
                           headers=_basic("aud-x", "audit-secret") | xapi_headers).status_code == 401
        with engine.begin() as conn:
            account_tables.store(conn, table, [accounts.changed(lms, "test", xapi.utc_now(), disabled=True)])
        eventually(lambda: client.post("/xapi/statements", json=statement, headers=lms_auth).status_code == 401,
                   timeout=10, message="disabled at the LRS")
    finally:
        engine.dispose()
