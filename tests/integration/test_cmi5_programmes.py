"""A programme delivered by a cmi5 course (issue 16, item 1): the course is imported on
the progress service, enrollment learns it from learnstream.content.v1, and a programme
is defined from it, or has it attached, there. The required modules are then the LMS's
ids of the course's AUs and blocks, which every reader of programme.defined upserts."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.enrollment import tables as t
from shared import bus, xapi
from shared.service import load
from tests.integration.test_cmi5 import package
from tests.support.cmi5 import fail, open_session, satisfy
from tests.support.flows import AUTH, define_cohort, eventually, import_csv, learners_csv, read_topic

pytestmark = pytest.mark.integration

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _programme(code: str, **modules) -> dict:
    return {"code": code, "title": f"cmi5 {code}", "final_test": f"https://learnstream.test/{code}/final-test",
            **modules}


def _programme_count(enrollment) -> int:
    return enrollment.get("/programmes", headers=AUTH).json["total"]


def _known(engine, course_id: str) -> bool:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).where(
            t.courses.c.id == course_id, t.courses.c.removed_at.is_(None))) == 1


@pytest.fixture
def services(deployment):
    for service in ("progress", "enrollment"):
        settings = deployment.settings(service)
        bus.ensure_topics(settings, load(service).topics(settings))
    for service in ("progress", "enrollment"):
        deployment.start_worker(service)
    return deployment.app("progress").test_client(), deployment.app("enrollment").test_client()


@pytest.mark.timeout(240)
def test_a_programme_is_defined_from_an_imported_course_and_progress_counts_its_modules(services):
    progress, enrollment = services
    course = progress.post("/cmi5/courses", data=package(aus=3), content_type="application/zip", headers=AUTH)
    assert course.status_code == 201, course.json
    modules = course.json["required_modules"]
    assert len(modules) == 4  # three AUs and their block

    def define():
        response = enrollment.post("/programmes", headers=AUTH, json=_programme("CMI", cmi5_course=course.json["id"]))
        return response if response.status_code == 201 else None
    defined = eventually(define, timeout=60, message="enrollment learning the imported course").json
    assert defined["required_modules"] == modules and defined["cmi5_course"] == course.json["id"]

    cohort = enrollment.post("/cohorts", headers=AUTH, json={
        "programme_id": defined["id"], "name": "CMI wave 1", "agency": "Revenue agency", "province": "North",
        "wave": 1, "accounts_issued_at": "2026-11-02"}).json
    # cmi5 knows learners by account (9.2.0.0-2): they are enrolled so.
    import_csv(enrollment, cohort["id"], "name,account_home_page,account_name,organisation\n"
               + "".join(f"Learner {n},{HOME},learner{n},Unit 1\n" for n in range(2)))

    def learners():
        items = progress.get(f"/cohorts/{cohort['id']}/learners", headers=AUTH).json.get("items") or []
        return items if len(items) == 2 else None
    rows = eventually(learners, timeout=60, message="progress projecting the enrolments")
    assert {row["modules_required"] for row in rows} == {len(modules)}

    # The learner table shows each AU's state (issue 16, item 6).
    page = progress.get(f"/cohorts/{cohort['id']}/learners", headers=AUTH).json
    assert [au["id"] for au in page["course"]["aus"]] == [f"https://example.org/au/{i}" for i in range(3)]
    assert page["course"]["aus"][0]["title"] == {"en": "AU 0"}
    assert all(row["au_states"] == ["not_attempted"] * 3 for row in page["items"])
    (first, one), (second, two) = ((row["registration"], _learner(row)) for row in page["items"])
    # A campaign enrolment's registration is its learner's alone.
    assert progress.post(f"/cmi5/courses/{course.json['id']}/launches", headers=AUTH,
                         json={"au": 0, "actor": two, "registration": first}).status_code == 409
    satisfy(progress, course.json["id"], first, 0, one)
    open_session(progress, course.json["id"], first, 1, one)  # open
    abandoned = open_session(progress, course.json["id"], first, 2, one)
    assert progress.post(f"/cmi5/sessions/{abandoned}/abandonment", headers=AUTH).status_code == 204
    # Waived before any launch (tested out): the enrolment's programme names the course.
    waivers = f"/cmi5/registrations/{second}/waivers"
    nobody = progress.post(waivers, headers=AUTH, json={"au": 0, "reason": "Tested Out"})
    assert nobody.status_code == 422 and "actor" in nobody.json["message"]
    stranger = progress.post(waivers, headers=AUTH, json={"au": 0, "reason": "Tested Out", "actor": one})
    assert stranger.status_code == 409 and "another learner" in stranger.json["message"]
    assert progress.post(waivers, headers=AUTH, json={"au": 0, "reason": "Tested Out", "actor": two}).status_code == 201
    fail(progress, course.json["id"], second, 1, two)
    states = {row["registration"]: row["au_states"] for row in
              progress.get(f"/cohorts/{cohort['id']}/learners", headers=AUTH).json["items"]}
    assert states == {first: ["satisfied", "in_progress", "abandoned"], second: ["waived", "failed", "not_attempted"]}
    assert "au_states" not in progress.get(f"/cohorts/{cohort['id']}/learners.csv", headers=AUTH).text


HOME = "https://accounts.example.org"


def _learner(row: dict) -> dict:
    """The actor enrollment gave a learner imported above ("Learner <n>", account learner<n>)."""
    return xapi.agent(account_home_page=HOME, account_name=f"learner{row['name'].split()[-1]}")


@pytest.mark.timeout(240)
def test_a_course_attaches_to_a_programme_until_learners_enrol_and_bad_requests_change_nothing(services):
    progress, enrollment = services
    course = progress.post("/cmi5/courses", data=package(aus=2), content_type="application/zip", headers=AUTH).json
    programme, cohort = define_cohort(enrollment, code="ATT", modules=1)

    unknown = enrollment.put(f"/programmes/{programme['id']}/cmi5-course", headers=AUTH, json={"cmi5_course": UNKNOWN})
    assert unknown.status_code == 404 and "cmi5_course" in str(unknown.json)
    assert UNKNOWN in unknown.json["message"]
    both = enrollment.post("/programmes", headers=AUTH, json=_programme(
        "BOTH", cmi5_course=course["id"], required_modules=["https://learnstream.test/m"]))
    neither = enrollment.post("/programmes", headers=AUTH, json=_programme("NONE"))
    assert both.status_code == 422 and "cmi5_course" in both.json["errors"]["json"]
    assert neither.status_code == 422 and "required_modules" in neither.json["errors"]["json"]
    assert _programme_count(enrollment) == 1

    def attach():
        response = enrollment.put(f"/programmes/{programme['id']}/cmi5-course", headers=AUTH,
                                  json={"cmi5_course": course["id"]})
        return response if response.status_code == 200 else None
    attached = eventually(attach, timeout=60, message="enrollment learning the imported course").json
    assert attached["required_modules"] == course["required_modules"] and attached["cmi5_course"] == course["id"]

    import_csv(enrollment, cohort["id"], learners_csv(1))
    again = enrollment.put(f"/programmes/{programme['id']}/cmi5-course", headers=AUTH,
                           json={"cmi5_course": course["id"]})
    assert again.status_code == 409 and "enrolled" in again.json["message"]

    # A removed course is forgotten: no programme can be defined from it any more.
    assert progress.delete(f"/cmi5/courses/{course['id']}", headers=AUTH).status_code == 204
    engine = enrollment.application.config["LEARNSTREAM_ENGINE"]
    eventually(lambda: not _known(engine, course["id"]), timeout=60, message="enrollment forgetting the course")
    gone = enrollment.post("/programmes", headers=AUTH, json=_programme("GONE", cmi5_course=course["id"]))
    assert gone.status_code == 404 and _programme_count(enrollment) == 1
    # The import and the removal are keyed by the course, so they stay in order on one partition.
    settings = progress.application.config["LEARNSTREAM_SETTINGS"]
    told = [r for r in read_topic(settings.kafka_bootstrap_servers, settings.topic("content"), 2)
            if r.key == course["id"].encode()]
    assert [dict(r.headers)["ce_type"] for r in told] == [b"dev.learnstream.course.imported",
                                                          b"dev.learnstream.course.removed"]
    assert len({r.partition for r in told}) == 1
    assert enrollment.get(f"/programmes/{programme['id']}", headers=AUTH).json["required_modules"] == \
        course["required_modules"]


def test_a_removal_read_before_its_import_keeps_the_course_removed(deployment):
    """Records of the content topic from before it was keyed by course may be read in
    either order (another partition, or a rebuild): the removal stands."""
    from services.enrollment.repository import EnrollmentRepository
    from services.enrollment.service import SERVICE as ENROLLMENT
    from services.progress.cmi5 import statements as st
    from shared import db
    from shared.consumer import ProjectionRunner
    from shared.errors import NotFound
    from tests.support import statements as s

    settings = deployment.settings("enrollment")
    engine = db.create_engine(settings.database_url)
    try:
        runner = ProjectionRunner(settings, engine, ENROLLMENT.projection(settings), ENROLLMENT.offsets,
                                  ENROLLMENT.processed)
        course = st.course_activity("https://learnstream.test/courses/c1", "c1", "https://example.org/course",
                                    {"en": "Course"}, ["https://example.org/au/0"])
        at = xapi.utc_now()
        imported, removed = st.course_imported("c1", course, "ops", at), st.course_removed("c1", course, "ops", at)
        runner.process(s.as_records([(removed.type, removed.statement), (imported.type, imported.statement)]))
        with engine.connect() as conn:
            row = conn.execute(sa.select(t.courses)).one()
            assert row.removed_at is not None and row.required_modules == ["https://example.org/au/0"]
            with pytest.raises(NotFound):
                EnrollmentRepository(conn).course_modules("c1")
    finally:
        engine.dispose()
