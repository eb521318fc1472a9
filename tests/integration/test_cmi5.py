"""The cmi5 LMS end to end on the progress app: import, launch, fetch, the AU's session
statements judged by the LRS, the LMS's satisfied, abandoned and waived."""
from __future__ import annotations

import base64
import io
import uuid
import zipfile
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from services.progress.cmi5 import terms as c
from tests.conftest import CREDENTIALS
from tests.support.lrs import V1, LrsClient

pytestmark = pytest.mark.integration

OPS = "Basic " + base64.b64encode(":".join(next(iter(CREDENTIALS.items()))).encode()).decode()
ACTOR = {"objectType": "Agent", "name": "Ada", "account": {"homePage": "https://example.org", "name": "ada"}}


def cmi5_xml(*, move_on="CompletedAndPassed", mastery="0.8", url="index.html?x=1", aus=1) -> bytes:
    au = "".join(f"""
        <au id="https://example.org/au/{i}" moveOn="{move_on}" masteryScore="{mastery}">
            <title><langstring lang="en">AU {i}</langstring></title>
            <description><langstring lang="en">AU {i}</langstring></description>
            <url>{url}</url>
            <launchParameters>p</launchParameters>
        </au>""" for i in range(aus))
    return f"""<?xml version="1.0"?>
<courseStructure xmlns="{c.NS}">
    <course id="https://example.org/course">
        <title><langstring lang="en">Course</langstring></title>
        <description><langstring lang="en">Course</langstring></description>
    </course>
    <block id="https://example.org/block">
        <title><langstring lang="en">Block</langstring></title>
        <description><langstring lang="en">Block</langstring></description>
        {au}
    </block>
</courseStructure>""".encode()


def package(**kw) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("cmi5.xml", cmi5_xml(**kw))
        z.writestr("index.html", "<html>AU</html>")
    return out.getvalue()


@pytest.fixture
def app(deployment):
    return deployment.app("progress")


@pytest.fixture
def ops(app):
    return app.test_client()


@pytest.fixture
def lrs(app) -> LrsClient:
    return LrsClient(app)


def _import(ops, body=None, content_type="application/zip"):
    return ops.post("/cmi5/courses", data=package() if body is None else body, content_type=content_type,
                    headers={"Authorization": OPS})


def _launch(ops, course, **kw):
    return ops.post(f"/cmi5/courses/{course}/launches", json={"au": 0, "actor": ACTOR, **kw},
                    headers={"Authorization": OPS})


class Au:
    """What an AU does with its launch URL."""

    def __init__(self, client, url):
        self.client = client
        self.query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.fetch_path = urlsplit(self.query["fetch"]).path
        self.token = None
        self.launch_data = None

    def fetch(self):
        return self.client.post(self.fetch_path).json

    def start(self):
        self.token = self.fetch()["auth-token"]
        got = self.client.get("/xapi/activities/state", headers=self.headers(), query_string={
            "stateId": c.LAUNCH_DATA, "activityId": self.query["activityId"], "agent": self.query["actor"],
            "registration": self.query["registration"]})
        assert got.status_code == 200, got.data
        self.launch_data = got.json
        prefs = self.client.get("/xapi/agents/profile", headers=self.headers(), query_string={
            "profileId": c.LEARNER_PREFERENCES, "agent": self.query["actor"]})
        assert prefs.status_code == 404  # none yet; reading them lets initialized through (11.0.0.0-3)
        return self

    def headers(self):
        return {"Authorization": f"Basic {self.token}", "X-Experience-API-Version": V1}

    def statement(self, verb, moveon=False, result=None, **extensions):
        template = self.launch_data["contextTemplate"]
        categories = [{"id": c.CATEGORY_CMI5}] + ([{"id": c.CATEGORY_MOVEON}] if moveon else [])
        st = {"id": str(uuid.uuid4()), "timestamp": "2026-12-02T04:00:00.000Z",
              "actor": orjson.loads(self.query["actor"]), "verb": {"id": verb},
              "object": {"objectType": "Activity", "id": self.query["activityId"]},
              "context": {"registration": self.query["registration"],
                          "contextActivities": {**template["contextActivities"], "category": categories},
                          "extensions": {**template["extensions"], **extensions}}}
        if result is not None:
            st["result"] = result
        return st

    def send(self, st):
        return self.client.post("/xapi/statements", data=orjson.dumps(st), content_type="application/json",
                                headers=self.headers())


def _verbs(lrs, registration):
    got = lrs.get(query={"registration": registration, "ascending": "true"}, version=V1).json["statements"]
    return [s["verb"]["id"].rsplit("/", 1)[1] for s in got], got


def test_import_refuses_a_package_naming_requirement_and_element(ops):
    bad = cmi5_xml().replace(b'id="https://example.org/block"', b'id="example.org/block"')
    got = _import(ops, bad, "text/xml")
    assert got.status_code == 400
    assert got.json["errors"]["package"] == {"requirement": "3.0.0.0-1", "element": "block"}
    assert _import(ops, cmi5_xml(), "text/xml").status_code == 400  # relative AU URL without a zip: 14.2.0.0-1
    assert _import(ops, b"not a zip", "application/zip").json["errors"]["package"]["requirement"] == "14.1.0.0-1"
    assert ops.post("/cmi5/courses", data=package(), content_type="application/zip").status_code == 401


def test_import_serves_the_files_and_launch_writes_launch_data(ops, lrs):
    course = _import(ops).json
    assert course["required_modules"][0] == course["aus"][0]["activity_id"]
    assert ops.get(f"/cmi5/content/{course['id']}/index.html?endpoint=x").data == b"<html>AU</html>"
    launch = _launch(ops, course["id"], returnURL="https://example.org/back")
    assert launch.status_code == 201, launch.data
    url = launch.json["url"]
    assert urlsplit(url).path == f"/cmi5/content/{course['id']}/index.html"
    au = Au(ops, url).start()
    assert au.query["x"] == "1" and au.query["activityId"] == course["aus"][0]["activity_id"]
    assert au.launch_data["contextTemplate"]["extensions"][c.EXT_SESSION] == launch.json["session_id"]
    assert au.launch_data["moveOn"] == "CompletedAndPassed" and au.launch_data["masteryScore"] == 0.8
    assert au.launch_data["returnURL"] == "https://example.org/back"
    assert au.fetch()["error-code"] == "1"  # a second fetch: the spec's error body
    verbs, statements = _verbs(lrs, launch.json["registration"])
    assert verbs == ["launched"]
    assert statements[0]["context"]["extensions"][c.EXT_LAUNCH_PARAMETERS] == "p"


def test_a_session_runs_to_satisfied_under_the_rules(ops, lrs):
    course = _import(ops).json
    launch = _launch(ops, course["id"]).json
    au = Au(ops, launch["url"]).start()
    early = au.send(au.statement("http://adlnet.gov/expapi/verbs/experienced"))
    assert early.status_code == 403 and b"9.3.0.0-4" in early.data  # nothing before initialized
    assert au.send(au.statement(c.INITIALIZED)).status_code == 200
    assert au.send(au.statement(c.INITIALIZED)).status_code == 403  # once per session
    low = au.statement(c.PASSED, True, {"success": True, "duration": "PT1S", "score": {"scaled": 0.5}},
                       **{c.EXT_MASTERY: 0.8})
    assert b"9.3.4.0-2" in au.send(low).data
    assert au.send(au.statement(c.COMPLETED, True, {"completion": True, "duration": "PT1S"})).status_code == 200
    passed = au.statement(c.PASSED, True, {"success": True, "duration": "PT1S", "score": {"scaled": 0.9}},
                          **{c.EXT_MASTERY: 0.8})
    assert au.send(passed).status_code == 200
    assert au.send(au.statement(c.TERMINATED, result={"duration": "PT3S"})).status_code == 200
    assert au.send(au.statement(c.TERMINATED, result={"duration": "PT3S"})).status_code == 401  # token died
    verbs, statements = _verbs(lrs, launch["registration"])
    assert verbs == ["launched", "initialized", "completed", "passed", "satisfied", "satisfied", "terminated"]
    block, whole = statements[4], statements[5]
    assert block["object"]["definition"]["type"] == c.TYPE_BLOCK
    assert whole["object"]["id"] == course["activity_id"]
    assert whole["context"]["contextActivities"]["grouping"] == [{"id": "https://example.org/course"}]
    state = ops.get(f"/cmi5/registrations/{launch['registration']}", headers={"Authorization": OPS}).json
    assert state["satisfied"] is True and state["aus"][0]["completed"] is True


def test_a_token_reaches_only_its_session(ops):
    course = _import(ops).json
    au = Au(ops, _launch(ops, course["id"]).json["url"]).start()
    other = dict(au.query, registration=str(uuid.uuid4()))
    got = ops.get("/xapi/activities/state", headers=au.headers(), query_string={
        "stateId": c.LAUNCH_DATA, "activityId": other["activityId"], "agent": other["actor"],
        "registration": other["registration"]})
    assert got.status_code == 403
    put = ops.put("/xapi/activities/state", headers=au.headers(), data=b"{}", content_type="application/json",
                  query_string={"stateId": c.LAUNCH_DATA, "activityId": au.query["activityId"],
                                "agent": au.query["actor"], "registration": au.query["registration"]})
    assert put.status_code == 403  # LMS.LaunchData is the LMS's
    assert au.send(au.statement(c.INITIALIZED)).status_code == 200
    stranger = au.statement("http://adlnet.gov/expapi/verbs/experienced")
    stranger["actor"] = {"objectType": "Agent", "account": {"homePage": "https://example.org", "name": "eve"}}
    assert au.send(stranger).status_code == 403


def test_a_new_launch_abandons_the_open_session_and_waiver(ops, lrs):
    course = _import(ops).json
    first = _launch(ops, course["id"]).json
    au = Au(ops, first["url"]).start()
    assert au.send(au.statement(c.INITIALIZED)).status_code == 200
    second = _launch(ops, course["id"], registration=first["registration"]).json
    assert au.send(au.statement(c.TERMINATED, result={"duration": "PT1S"})).status_code == 401
    verbs, statements = _verbs(lrs, first["registration"])
    assert verbs == ["launched", "initialized", "abandoned", "launched"]
    assert statements[2]["context"]["extensions"][c.EXT_SESSION] == first["session_id"]
    assert "duration" in statements[2]["result"]
    assert statements[3]["object"]["id"] == statements[0]["object"]["id"]  # the same activityId in a registration
    abandon = ops.post(f"/cmi5/sessions/{second['session_id']}/abandonment", headers={"Authorization": OPS})
    assert abandon.status_code == 204
    waiver = ops.post(f"/cmi5/registrations/{first['registration']}/waivers", headers={"Authorization": OPS},
                      json={"au": 0, "reason": "Tested Out"})
    assert waiver.status_code == 201, waiver.data
    verbs, statements = _verbs(lrs, first["registration"])
    assert verbs[-3:] == ["waived", "satisfied", "satisfied"]
    assert statements[-3]["result"]["extensions"][c.EXT_REASON] == "Tested Out"
    assert {s["context"]["extensions"][c.EXT_SESSION] for s in statements[-3:]} == {waiver.json["session_id"]}
    again = ops.post(f"/cmi5/registrations/{first['registration']}/waivers", headers={"Authorization": OPS},
                     json={"au": 0, "reason": "Tested Out"})
    assert again.status_code == 409


def test_a_session_past_its_time_is_abandoned_and_its_token_dies(app, ops, lrs):
    from datetime import timedelta

    from services.progress import tables
    from services.progress.cmi5.lms import SESSION_HOURS, Cmi5Lms
    from shared import xapi

    course = _import(ops).json
    launch = _launch(ops, course["id"]).json
    au = Au(ops, launch["url"]).start()
    assert au.send(au.statement(c.INITIALIZED)).status_code == 200
    later = Cmi5Lms(app.config["LEARNSTREAM_ENGINE"], outbox=tables.outbox, topic="t", content_topic="c",
                    activity_base="https://learnstream.dev/xapi/activities/",
                    clock=lambda: xapi.utc_now() + timedelta(hours=SESSION_HOURS, minutes=1))
    assert later.expire_sessions() == 1
    assert later.expire_sessions() == 0
    assert _verbs(lrs, launch["registration"])[0] == ["launched", "initialized", "abandoned"]
    assert au.send(au.statement("http://adlnet.gov/expapi/verbs/experienced")).status_code == 401
    assert au.fetch()["error-code"] == "1"
    assert ops.post("/cmi5/fetch/not-a-session.x").json["error-code"] == "2"


def test_a_browser_script_gets_no_basic_challenge(ops):
    """A challenge would open the browser's login dialog over the AU's page."""
    bad = {"Authorization": "Basic " + base64.b64encode(b"nobody:wrong").decode(), "X-Experience-API-Version": V1}
    assert "WWW-Authenticate" in ops.get("/xapi/statements", headers=bad).headers
    scripted = ops.get("/xapi/statements", headers={**bad, "Sec-Fetch-Mode": "cors"})
    assert scripted.status_code == 401 and "WWW-Authenticate" not in scripted.headers


def test_an_lms_client_launches_only_for_enrolments_of_its_granted_cohorts(app, ops, deployment):
    from services.progress import tables as pt
    from shared import account_tables, accounts, db, xapi

    engine = db.create_engine(deployment.settings("progress").database_url)
    portal = accounts.new_account("lms-cmi5", "Portal", "portal-secret", "test", xapi.utc_now(),
                                  role="lms_client", cohorts=["granted-cohort"])
    granted, other = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        with engine.begin() as conn:
            account_tables.store(conn, pt.accounts, [portal])
            for registration, cohort in ((granted, "granted-cohort"), (other, "other-cohort")):
                conn.execute(pt.learner_enrolments.insert().values(
                    registration=registration, cohort_id=cohort, programme_id="p", learner_key=xapi.learner_key(ACTOR),
                    name="Ada", status="enrolled", modules_required=1))
    finally:
        engine.dispose()
    course = _import(ops).json["id"]
    as_portal = {"Authorization": "Basic " + base64.b64encode(b"lms-cmi5:portal-secret").decode()}

    def launch(registration):
        body = {"au": 0, "actor": ACTOR} | ({"registration": registration} if registration else {})
        return ops.post(f"/cmi5/courses/{course}/launches", json=body, headers=as_portal)

    for refused in (other, None, str(uuid.uuid4())):  # another cohort's, none given, one progress does not know
        answer = launch(refused)
        assert answer.status_code == 403 and "not granted" in answer.json["message"], answer.json
    assert launch(granted).status_code == 201
    assert ops.post("/cmi5/courses", data=package(), content_type="application/zip",
                    headers=as_portal).status_code == 403  # importing is a programme manager's


def test_an_au_is_waived_before_anyone_launched_in_the_registration(ops, lrs):
    course = _import(ops).json
    registration = str(uuid.uuid4())
    waivers = f"/cmi5/registrations/{registration}/waivers"
    unknown = ops.post(waivers, headers={"Authorization": OPS}, json={"au": 0, "reason": "Tested Out", "actor": ACTOR})
    assert unknown.status_code == 404, unknown.json  # no enrolment names a course, and none was given
    assert "registration" in unknown.json["errors"]["json"] and "give the course" in unknown.json["message"]
    bad = ops.post("/cmi5/registrations/not-a-uuid/waivers", headers={"Authorization": OPS},
                   json={"au": 0, "reason": "Tested Out", "actor": ACTOR, "course": course["id"]})
    assert bad.status_code == 422 and "registration" in str(bad.json)
    assert _verbs(lrs, registration)[0] == []  # nothing was recorded
    done = ops.post(waivers, headers={"Authorization": OPS},
                    json={"au": 0, "reason": "Tested Out", "actor": ACTOR, "course": course["id"]})
    assert done.status_code == 201, done.json
    assert _verbs(lrs, registration)[0] == ["waived", "satisfied", "satisfied"]
    # Its first launch then belongs to the same learner and course.
    assert _launch(ops, course["id"], registration=registration).status_code == 201
    other = dict(ACTOR, account={"homePage": "https://example.org", "name": "eve"})
    assert _launch(ops, course["id"], registration=registration, actor=other).status_code == 409
