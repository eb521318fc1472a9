"""An agency operator sees nothing of other units (issue 14) in any view, export, CSV or
PDF of any service: what it may see is filtered, another unit's is a 404, and a route
that does not filter by unit is a 403 (shared.permissions.UNIT_AWARE)."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from shared import bus, permissions
from shared.service import load
from tests.conftest import UNIT_OPERATOR
from tests.support.certification import TODAY, deciding_statements, ensure_topics, produce, wait_for_certificates
from tests.support.flows import AUTH, define_cohort, eventually, import_csv

UNIT_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{UNIT_OPERATOR[0]}:{UNIT_OPERATOR[1]}".encode()).decode()}


@pytest.mark.timeout(400)
def test_an_agency_operator_sees_nothing_of_other_units_anywhere(deployment):
    ensure_topics(deployment)
    workers = ("enrollment", "progress", "certification", "assessment")
    for service in workers:  # every topic served before any worker subscribes (support.certification)
        settings = deployment.settings(service)
        bus.ensure_topics(settings, load(service).topics(settings))
    for service in workers:
        deployment.start_worker(service)
    enrollment = deployment.app("enrollment").test_client()
    programme, ours = define_cohort(enrollment, accounts_issued_at=TODAY.date().isoformat())
    theirs = enrollment.post("/cohorts", headers=AUTH, json={
        "programme_id": programme["id"], "name": "Customs wave", "agency": "Customs agency", "province": "South",
        "wave": 1, "accounts_issued_at": TODAY.date().isoformat()}).json
    import_csv(enrollment, ours["id"], "name,email,organisation\nOur Learner,ours@example.org,Revenue\n")
    import_csv(enrollment, theirs["id"], "name,email,organisation\nTheir Learner,theirs@example.org,Customs\n")
    enrolments = {e["cohort_id"]: e for e in enrollment.get("/enrolments", headers=AUTH).json["items"]}
    # Assessment's results of both enrolments first: the statements below stand in for
    # assessment's own `passed` (source "test"), which its projection need not take.
    assessment = deployment.app("assessment").test_client()
    eventually(lambda: assessment.get(f"/programmes/{programme['id']}/results", headers=AUTH).json.get("total") == 2,
               message="assessment's results")
    start = TODAY - timedelta(days=1)
    produce(deployment, deciding_statements(enrolments[ours["id"]], programme, ours, start)
            + deciding_statements(enrolments[theirs["id"]], programme, theirs, start))
    certification = deployment.app("certification").test_client()
    certificates = {c["cohort_id"]: c for c in wait_for_certificates(certification, 2)}
    progress = deployment.app("progress").test_client()
    eventually(lambda: progress.get("/campaign", headers=AUTH).json.get("enrolled") == 2, message="progress")

    def seen(client, path):
        response = client.get(path, headers=UNIT_AUTH)
        assert response.status_code == 200, (path, response.status_code)
        body = response.get_data()  # bytes: PDFs and zips too
        for other in ("Their Learner", "theirs@example.org", theirs["id"], "Customs"):
            assert other.encode() not in body, (path, other)
        return response

    def hidden(client, path):
        response = client.get(path, headers=UNIT_AUTH)
        assert response.status_code == 404, (path, response.status_code)
        assert b"Their Learner" not in response.get_data() and b"theirs@example.org" not in response.get_data(), path

    # enrollment
    assert [c["id"] for c in seen(enrollment, "/cohorts").json["items"]] == [ours["id"]]
    assert [e["cohort_id"] for e in seen(enrollment, "/enrolments").json["items"]] == [ours["id"]]
    hidden(enrollment, f"/cohorts/{theirs['id']}")
    hidden(enrollment, f"/enrolments/{enrolments[theirs['id']]['id']}")
    # progress
    assert seen(progress, "/campaign").json["enrolled"] == 1
    seen(progress, "/rollups?by=agency")
    assert [c["id"] for c in seen(progress, "/cohorts").json["items"]] == [ours["id"]]
    assert "Our Learner" in seen(progress, f"/cohorts/{ours['id']}/learners.csv").text
    for path in ("", "/learners", "/learners.csv", "/series"):
        hidden(progress, f"/cohorts/{theirs['id']}{path}")
    hidden(progress, f"/dashboard/cohorts/{theirs['id']}")
    # certification
    assert [c["cohort_id"] for c in seen(certification, "/certificates").json["items"]] == [ours["id"]]
    assert [s["cohort_id"] for s in seen(certification, "/standings").json["items"]] == [ours["id"]]
    assert seen(certification, f"/certificates/{certificates[ours['id']]['id']}.pdf").mimetype == "application/pdf"
    assert "Our Learner" in seen(certification, f"/cohorts/{ours['id']}/certificates.csv").text
    assert seen(certification, f"/cohorts/{ours['id']}/certificates.zip").mimetype == "application/zip"
    for path in ("", ".pdf"):
        hidden(certification, f"/certificates/{certificates[theirs['id']]['id']}{path}")
    for path in ("certificates.csv", "certificates.zip"):
        hidden(certification, f"/cohorts/{theirs['id']}/{path}")
    # assessment
    ours_only = seen(assessment, f"/programmes/{programme['id']}/results").json
    assert [r["cohort_id"] for r in ours_only["items"]] == [ours["id"]] and sum(ours_only["counts"].values()) == 1
    assert seen(assessment, f"/cohorts/{ours['id']}/results").json["total"] == 1
    nothing = seen(assessment, f"/cohorts/{theirs['id']}/results").json
    assert nothing["items"] == [] and sum(nothing["counts"].values()) == 0
    hidden(assessment, f"/results/{enrolments[theirs['id']]['id']}")
    # A route that does not filter by unit refuses an agency operator, naming why.
    forwarding = deployment.app("forwarding").test_client()
    refused = forwarding.get("/targets", headers=UNIT_AUTH)
    assert refused.status_code == 403 and refused.json["message"] == permissions.refusal(
        "forwarding", "agency_operator", "GET", "/targets")
