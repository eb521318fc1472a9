"""The operator API over the progress read models: views, filters, CSV, roles, clock."""
from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from services.progress.app import create_app
from services.progress.service import SERVICE as PROGRESS
from shared import db
from shared.consumer import ProjectionRunner
from tests.conftest import UNIT_OPERATOR
from tests.support import statements as s
from tests.support.flows import AUTH

NORTH = "33333333-3333-4333-8333-333333333333"   # Revenue agency
SOUTH = "44444444-4444-4444-8444-444444444444"   # Customs
ISSUED = datetime(2026, 11, 2, tzinfo=UTC)
DEADLINE = ISSUED + timedelta(days=10)
UNIT_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{UNIT_OPERATOR[0]}:{UNIT_OPERATOR[1]}".encode()).decode()}


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def world(deployment):
    """Two cohorts of two agencies: in NORTH, learner 0 finished and is certified,
    learner 1 did one module, learner 2 nothing, learner 3 withdrew; SOUTH has one learner."""
    settings = deployment.settings("progress")
    engine = db.create_engine(settings.database_url)
    runner = ProjectionRunner(settings, engine, PROGRESS.projection(settings), PROGRESS.offsets, PROGRESS.processed)
    regs = [s.new_id() for _ in range(5)]
    day = timedelta(days=1)
    facts = [s.enrolled(n, regs[n], NORTH, ISSUED, DEADLINE) for n in range(4)]
    facts += [s.enrolled(4, regs[4], SOUTH, ISSUED, DEADLINE, agency="Customs")]
    facts += [s.completed(0, m, ISSUED + day) for m in s.MODULES]
    facts += [s.final_test(0, False, 0.5, ISSUED + 2 * day), s.final_test(0, True, 0.85, ISSUED + 3 * day),
              s.certificate(0, "DSK-2026-000001", ISSUED + 3 * day)]
    facts += [s.completed(1, s.MODULES[0], ISSUED + 2 * day)]
    facts += [s.withdrew(3, regs[3], NORTH, ISSUED + day, DEADLINE)]
    runner.process(s.as_records(facts))
    clock = Clock(ISSUED + 5 * day)
    app = create_app(settings, clock=clock)
    yield app.test_client(), clock, regs
    engine.dispose()


def test_cohort_counts_and_rates(world):
    client, clock, _ = world
    cohort = client.get(f"/cohorts/{NORTH}", headers=AUTH).json
    assert {k: cohort[k] for k in ("enrolled", "withdrawn", "started", "modules_completed", "passed", "failed",
                                   "certified", "overdue")} == {
        "enrolled": 3, "withdrawn": 1, "started": 2, "modules_completed": 1, "passed": 1, "failed": 0,
        "certified": 1, "overdue": 0}
    assert cohort["rates"]["certified"] == round(1 / 3, 4)
    clock.now = DEADLINE + timedelta(hours=1)
    assert client.get(f"/cohorts/{NORTH}", headers=AUTH).json["overdue"] == 2


def test_learner_table_filters_sorts_and_flags_overdue(world):
    client, clock, regs = world
    clock.now = DEADLINE + timedelta(hours=1)
    listed = client.get(f"/cohorts/{NORTH}/learners?sort=progress&order=desc", headers=AUTH).json
    assert [r["name"] for r in listed["items"]][:2] == ["Learner 0", "Learner 1"]
    by_name = {r["name"]: r for r in listed["items"]}
    assert by_name["Learner 0"]["percent"] == 100.0 and by_name["Learner 0"]["certificate_number"] == "DSK-2026-000001"
    assert by_name["Learner 0"]["final_test_attempts"] == 2 and by_name["Learner 0"]["final_test_best_score"] == 0.85
    assert [by_name[n]["overdue"] for n in ("Learner 0", "Learner 1", "Learner 2", "Learner 3")] == [
        False, True, True, False]
    overdue = client.get(f"/cohorts/{NORTH}/learners?state=overdue", headers=AUTH).json
    assert sorted(r["registration"] for r in overdue["items"]) == sorted(regs[1:3])
    assert client.get(f"/cohorts/{NORTH}/learners?q=learner 2", headers=AUTH).json["total"] == 1
    paged = client.get(f"/cohorts/{NORTH}/learners?page=2&page_size=3", headers=AUTH).json
    assert (paged["total"], len(paged["items"])) == (4, 1)
    bad = client.get(f"/cohorts/{NORTH}/learners?state=sleeping&sort=shoe", headers=AUTH)
    assert bad.status_code == 422 and set(bad.json["errors"]["query"]) == {"state", "sort"}
    # Numbers past what the database holds are refused, not a 500.
    huge = client.get(f"/cohorts?wave={10**23}&page={10**23}", headers=AUTH)
    assert huge.status_code == 422 and set(huge.json["errors"]["query"]) == {"wave", "page"}


def test_csv_export_lists_who_has_not_finished(world):
    client, clock, _ = world
    clock.now = DEADLINE + timedelta(hours=1)
    response = client.get(f"/cohorts/{NORTH}/learners.csv?state=overdue", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["name"] for r in rows) == ["Learner 1", "Learner 2"]
    assert {r["state"] for r in rows} == {"overdue"} and {r["overdue"] for r in rows} == {"True"}
    everyone = list(csv.DictReader(io.StringIO(client.get(f"/cohorts/{NORTH}/learners.csv", headers=AUTH)
                                               .get_data(as_text=True))))
    assert {r["name"]: r["state"] for r in everyone} == {
        "Learner 0": "certified", "Learner 1": "overdue", "Learner 2": "overdue", "Learner 3": "withdrawn"}


def test_rollups_campaign_and_series(world):
    client, _, _ = world
    agencies = {r["key"]: r for r in client.get("/rollups?by=agency", headers=AUTH).json}
    assert (agencies["Revenue agency"]["enrolled"], agencies["Customs"]["enrolled"]) == (3, 1)
    assert client.get("/campaign", headers=AUTH).json["enrolled"] == 4
    series = client.get(f"/cohorts/{NORTH}/series", headers=AUTH).json
    by_day = {d["day"]: d for d in series}
    assert by_day["2026-11-02"]["enrolled"] == 3  # learner 3 withdrew: counted as withdrawn only
    assert by_day["2026-11-03"]["active"] == 1 and by_day["2026-11-03"]["completed"] == 1
    assert by_day["2026-11-05"]["certified"] == 1
    assert series[-1]["day"] == "2026-11-12"  # the window's end (the deadline)


def test_a_unit_operator_sees_only_its_unit(world):
    client, _, _ = world
    listed = client.get("/cohorts", headers=UNIT_AUTH).json
    assert [c["id"] for c in listed["items"]] == [NORTH] and listed["total"] == 1
    assert client.get(f"/cohorts/{SOUTH}", headers=UNIT_AUTH).status_code == 404
    assert client.get(f"/cohorts/{SOUTH}/learners", headers=UNIT_AUTH).status_code == 404
    assert client.get(f"/cohorts/{SOUTH}/learners.csv", headers=UNIT_AUTH).status_code == 404
    assert client.get("/campaign", headers=UNIT_AUTH).json["enrolled"] == 3
    assert [r["key"] for r in client.get("/rollups?by=agency", headers=UNIT_AUTH).json] == ["Revenue agency"]
    assert client.get(f"/dashboard/cohorts/{SOUTH}", headers=UNIT_AUTH).status_code == 404
    # The campaign operator sees both.
    assert client.get("/cohorts", headers=AUTH).json["total"] == 2


def test_a_unit_operator_is_refused_where_an_api_does_not_filter_by_unit(deployment):
    # Issue 14: enrollment's, assessment's and certification's views filter by unit now; these
    # routes do not (shared.permissions).
    for service, path in (("enrollment", "/accounts"), ("assessment", "/attempts/x"),
                          ("forwarding", "/targets")):
        response = deployment.app(service).test_client().get(path, headers=UNIT_AUTH)
        assert response.status_code == 403 and "agency_operator" in response.json["message"].replace(
            "agency operator", "agency_operator"), service


def test_dashboard_pages_need_credentials(world):
    client, _, _ = world
    # No Basic prompt any more: a browser without a session goes to the sign-in page.
    assert client.get("/dashboard").headers["Location"].startswith("/dashboard/sign-in")
    page = client.get("/dashboard", headers=AUTH)
    assert page.status_code == 200 and b"dashboard.js" in page.data
    assert client.get(f"/dashboard/cohorts/{NORTH}", headers=AUTH).status_code == 200
    assert client.get("/dashboard/static/dashboard.js", headers=AUTH).status_code == 200


def test_the_dashboard_pages_take_their_scripts_query_but_the_api_refuses_one_it_does_not_take(world):
    client, _, _ = world
    page = client.get(f"/dashboard/cohorts/{NORTH}?refresh=500", headers=AUTH)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert client.get("/dashboard?utm_source=mail", headers=AUTH).status_code == 200
    refused = client.get(f"/cohorts/{NORTH}/series?refresh=500", headers=AUTH)
    assert refused.status_code == 422 and refused.json["errors"]["query"] == {"refresh": ["Unknown field."]}


def test_the_csv_export_is_declared_and_served_without_paging(world):
    client, _, _ = world
    operation = client.get("/openapi.json").json["paths"]["/cohorts/{cohort_id}/learners.csv"]["get"]
    names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert names == {"state", "organisation", "q", "sort", "order"}
    paged = client.get(f"/cohorts/{NORTH}/learners.csv?page=2&page_size=1", headers=AUTH)
    assert paged.status_code == 422 and set(paged.json["errors"]["query"]) == {"page", "page_size"}


def _runner(deployment):
    settings = deployment.settings("progress")
    engine = db.create_engine(settings.database_url)
    return settings, ProjectionRunner(settings, engine, PROGRESS.projection(settings), PROGRESS.offsets,
                                      PROGRESS.processed)


def test_a_past_cohorts_series_covers_its_whole_window(deployment):
    """Accounts issued 20 days ago, learners enrolled today: the series runs from the
    accounts' issue, through the deadline, to today."""
    settings, runner = _runner(deployment)
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    issued = now - timedelta(days=20)
    past = s.new_id()
    runner.process(s.as_records([s.enrolled(n, s.new_id(), past, now, issued + timedelta(days=10), issued=issued)
                                 for n in range(2)]))
    client = create_app(settings, clock=Clock(now)).test_client()
    series = client.get(f"/cohorts/{past}/series", headers=AUTH).json
    assert [d["day"] for d in series] == [(issued + timedelta(days=i)).date().isoformat() for i in range(21)]
    assert [d["enrolled"] for d in series] == [0] * 20 + [2]
    runner.engine.dispose()


def test_a_withdrawn_learner_counts_as_withdrawn_and_nowhere_else(deployment):
    """One rule in every view (README, progress): the counts, the series and the state
    filters all leave a withdrawn learner out of every figure but `withdrawn`."""
    settings, runner = _runner(deployment)
    day = timedelta(days=1)
    stays, leaves = s.new_id(), s.new_id()
    facts = [s.enrolled(0, stays, NORTH, ISSUED, DEADLINE), s.enrolled(1, leaves, NORTH, ISSUED, DEADLINE)]
    for n in (0, 1):
        facts += [s.completed(n, m, ISSUED + day) for m in s.MODULES]
        facts += [s.final_test(n, True, 0.9, ISSUED + 2 * day),
                  s.certificate(n, f"DSK-2026-00000{n}", ISSUED + 2 * day)]
    facts.append(s.withdrew(1, leaves, NORTH, ISSUED + 3 * day, DEADLINE))
    runner.process(s.as_records(facts))
    client = create_app(settings, clock=Clock(ISSUED + 4 * day)).test_client()
    cohort = client.get(f"/cohorts/{NORTH}", headers=AUTH).json
    assert {k: cohort[k] for k in ("enrolled", "withdrawn", "started", "modules_completed", "passed", "certified")} == {
        "enrolled": 1, "withdrawn": 1, "started": 1, "modules_completed": 1, "passed": 1, "certified": 1}
    totals = {name: sum(d[name] for d in client.get(f"/cohorts/{NORTH}/series", headers=AUTH).json)
              for name in ("enrolled", "completed", "certified")}
    assert totals == {"enrolled": 1, "completed": 1, "certified": 1}
    assert client.get("/campaign", headers=AUTH).json["certified"] == 1
    certified = client.get(f"/cohorts/{NORTH}/learners?state=certified", headers=AUTH).json["items"]
    assert [r["registration"] for r in certified] == [stays]
    runner.engine.dispose()
