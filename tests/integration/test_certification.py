"""Certification end to end on a real broker and database: enrollment API -> Kafka;
module completions on the LRS topic and passes on the assessment topic, produced as those
services would; certificates issued exactly once, verifiable, revocable, printable."""
from __future__ import annotations

import csv
import io
import time
import uuid
import zipfile
from datetime import timedelta

import pypdfium2 as pdfium
import sqlalchemy as sa
import zxingcpp

from services.certification import tables as t
from services.certification.service import SERVICE
from shared import db, events, xapi
from shared.consumer import ProjectionRunner
from tests.support.certification import (
    DEADLINE,
    TODAY,
    cohort_with_learners,
    deciding_statements,
    final_test_passed,
    lrs_statement,
    produce,
    wait_for_certificates,
)
from tests.support.flows import AUTH, eventually, read_topic


def _count(engine, table, *where) -> int:
    with db.reading(engine) as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def _standing(client, enrolment) -> str | None:
    items = client.get("/standings", headers=AUTH, query_string={"programme_id": enrolment["programme_id"],
                                                                 "page_size": 1000}).json["items"]
    return next((i["standing"] for i in items if i["registration"] == enrolment["id"]), None)


def test_the_rule_issues_one_verifiable_certificate_per_qualifying_learner(deployment):
    programme, cohort, learners = cohort_with_learners(deployment, 5)
    ana, bo, cy, dee, eve = learners
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    start = TODAY + timedelta(days=1)
    records = deciding_statements(ana, programme, cohort, start)
    records += deciding_statements(bo, programme, cohort, start)[:-1]        # never passes the test
    records += deciding_statements(cy, programme, cohort, start)[1:]         # skips module 1
    late = deciding_statements(dee, programme, cohort, start)                # module 2 after the deadline
    late[1] = ("lrs", late[1][1], lrs_statement(dee, programme["required_modules"][1], DEADLINE + timedelta(hours=5)))
    records += late
    eve_records = deciding_statements(eve, programme, cohort, start)         # a player says passed/satisfied
    eve_records[0] = ("lrs", events.EventType.LRS_STATEMENT,
                      lrs_statement(eve, programme["required_modules"][0], start, xapi.SATISFIED))
    eve_records[1] = ("lrs", events.EventType.LRS_STATEMENT,
                      lrs_statement(eve, programme["required_modules"][1], start, xapi.PASSED))
    records += list(reversed(eve_records))                                    # and in reverse order
    produce(deployment, records)

    issued = wait_for_certificates(client, 2)
    eventually(lambda: _standing(client, dee) == "late" and _standing(client, bo) == "in_progress")
    assert _standing(client, cy) == "in_progress"
    by_registration = {c["registration"]: c for c in issued}
    assert set(by_registration) == {ana["id"], eve["id"]}
    cert = by_registration[ana["id"]]
    year = (start + timedelta(hours=2)).year
    assert cert["number"] in (f"DS1-{year}-000001", f"DS1-{year}-000002")
    assert cert["learner_name"] == ana["learner"]["name"] and cert["organisation"] == ana["learner"]["organisation"]
    assert cert["issued_at"] == xapi.format_timestamp(start + timedelta(hours=2)).replace(".000", "")
    assert cert["cohort_id"] == cohort["id"] and cert["status"] == "valid" and cert["issue_no"] == 1
    assert len(cert["verification_code"]) >= 22

    public = deployment.app("certification").test_client()
    verified = public.get(f"/verify/{cert['verification_code']}.json")
    assert verified.status_code == 200
    assert verified.json == {"status": "valid", "number": cert["number"], "name": ana["learner"]["name"],
                             "programme": programme["title"], "issued_on": cert["issued_at"][:10]}
    assert public.get(f"/api/verify/{cert['verification_code']}").json == verified.json

    # A grace period applies at once to those who were late, and to later decisions.
    assert client.put(f"/programmes/{programme['id']}/rules", json={"grace_days": 1}).status_code == 401
    rules = client.put(f"/programmes/{programme['id']}/rules", headers=AUTH, json={"grace_days": 1})
    assert rules.status_code == 200 and rules.json["grace_days"] == 1 and rules.json["updated_by"] == "ops"
    assert [c["registration"] for c in wait_for_certificates(client, 1, q=dee["learner"]["name"])] == [dee["id"]]

    # The earned statements reach the bus, keyed by learner.
    deployment.settings("certification")
    topic = deployment.settings("certification").own_topic
    records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], topic, expected=3)
    assert len(records) == 3
    earned = {xapi.decode(r.value)["context"]["registration"]: r for r in records}
    record = earned[ana["id"]]
    stmt = xapi.decode(record.value)
    assert events.routing(record.headers) == ("certification", events.EventType.CERTIFICATE_EARNED)
    assert events.header(record.headers, events.CE_TYPE) == "dev.learnstream.certificate.earned"
    assert events.header(record.headers, events.CE_ID) == stmt["id"]
    assert record.key.decode() == ana["learner_key"]
    assert stmt["verb"]["id"] == "http://id.tincanapi.com/verb/earned"
    assert stmt["actor"]["mbox"] == f"mailto:{ana['learner']['email']}"
    assert stmt["object"]["definition"]["type"] == xapi.ACTIVITY_TYPE_CERTIFICATE
    assert stmt["object"]["definition"]["extensions"][xapi.EXT_CERTIFICATE]["number"] == cert["number"]
    assert xapi.context_activity(stmt, "parent")["id"] == programme["activity_id"]
    assert cert["verification_code"] not in record.value.decode()  # the code is for the holder, not the bus


def test_two_instances_and_duplicate_deliveries_issue_exactly_once_and_a_rebuild_issues_nothing(deployment):
    count = 40
    programme, cohort, learners = cohort_with_learners(deployment, count)
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.settings("certification", consumer_max_records=25)
    deployment.start_worker("certification", consumer_max_records=25)
    deployment.start_worker("certification", consumer_max_records=25)
    start = TODAY + timedelta(days=2)
    records = [r for learner in learners for r in deciding_statements(learner, programme, cohort, start)]
    # Every deciding statement twice (the relay's redelivery), and each module completed
    # twice more under new statement ids (a player repeating itself).
    repeats = [(s, e, lrs_statement(learner, stmt["object"]["id"], start + timedelta(hours=9)))
               for learner in learners for s, e, stmt in deciding_statements(learner, programme, cohort, start)
               if s == "lrs"]
    produce(deployment, records)
    produce(deployment, records + repeats)

    issued = wait_for_certificates(client, count)
    time.sleep(3)  # anything issued twice would show by now
    engine = db.create_engine(deployment.settings("certification").database_url)
    try:
        assert _count(engine, t.certificates) == count
        assert len({c["number"] for c in issued}) == count
        year = (start + timedelta(hours=2)).year
        assert sorted(c["number"] for c in issued) == [f"DS1-{year}-{n:06d}" for n in range(1, count + 1)]
        assert len({c["verification_code"] for c in issued}) == count
        assert _count(engine, t.outbox, t.outbox.c.event_type == events.EventType.CERTIFICATE_EARNED) == count

        # The database, not only the code, refuses a second issue.
        with engine.begin() as conn:
            row = conn.execute(sa.select(t.certificates).limit(1)).first()._asdict()
            duplicate = dict(row, id="dup", number=None, verification_code="dup-code")
            assert db.insert_returning_new_ids(conn, t.certificates, [duplicate],
                                               ["programme_id", "learner_key", "issue_no"]) == []
        try:
            with engine.begin() as conn:
                conn.execute(t.certificates.insert().values(duplicate | {"issue_no": 2}))
            raise AssertionError("a second valid certificate was accepted")
        except sa.exc.IntegrityError:
            pass

        deployment.stop_workers()
        before = {c["id"]: c for c in issued}
        runner = ProjectionRunner(deployment.settings("certification"), engine,
                                  SERVICE.projection(deployment.settings("certification")),
                                  SERVICE.offsets, SERVICE.processed)
        assert runner.rebuild(progress=False) >= count * 4
        assert _count(engine, t.certificates) == count
        assert _count(engine, t.outbox) == count
        assert {c["id"]: c for c in wait_for_certificates(client, count)} == before
        assert _count(engine, t.learner_enrolments, t.learner_enrolments.c.standing == "qualified") == count
    finally:
        engine.dispose()


def test_withdrawals_before_and_after_qualifying(deployment):
    programme, cohort, learners = cohort_with_learners(deployment, 3)
    ana, bo, cy = learners
    enrollment = deployment.app("enrollment").test_client()
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    now = xapi.utc_now()
    # Bo is withdrawn first, then an LMS still reports him finishing: no certificate.
    assert enrollment.post(f"/enrolments/{bo['id']}/withdrawal", headers=AUTH, json={}).status_code == 200
    eventually(lambda: _standing(client, bo) == "withdrawn")
    # Ana qualified in the past, then is withdrawn: she keeps her certificate.
    # Cy finishes in the future (by statement time); his withdrawal, made now but arriving
    # after his certificate was issued, undoes it.
    produce(deployment, deciding_statements(bo, programme, cohort, now + timedelta(hours=1))
            + deciding_statements(ana, programme, cohort, now - timedelta(hours=5))
            + deciding_statements(cy, programme, cohort, now + timedelta(hours=1)))
    wait_for_certificates(client, 2)
    for learner in (ana, cy):
        assert enrollment.post(f"/enrolments/{learner['id']}/withdrawal", headers=AUTH, json={}).status_code == 200
    revoked = wait_for_certificates(client, 1, status="revoked")
    assert [c["registration"] for c in revoked] == [cy["id"]]
    assert revoked[0]["revoked_by"] == "system" and "withdrawn" in revoked[0]["revocation_reason"]
    active = client.get("/certificates", headers=AUTH, query_string={"status": "valid"}).json["items"]
    assert [c["registration"] for c in active] == [ana["id"]]
    assert _standing(client, bo) == "withdrawn" and _standing(client, cy) == "withdrawn"
    assert _standing(client, ana) == "qualified"


def test_revocation_reissue_verification_pdf_and_exports(deployment):
    programme, cohort, learners = cohort_with_learners(deployment, 3)
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    start = TODAY + timedelta(days=1)
    produce(deployment, [r for learner in learners for r in deciding_statements(learner, programme, cohort, start)])
    issued = wait_for_certificates(client, 3)
    cert = next(c for c in issued if c["registration"] == learners[0]["id"])
    code = cert["verification_code"]

    # Revocation: operators only, with a reason, once.
    path = f"/certificates/{cert['id']}/revocation"
    assert client.post(path, json={"reason": "x"}).status_code == 401
    assert client.post(path, headers=AUTH, json={}).status_code == 422
    revoked = client.post(path, headers=AUTH, json={"reason": "identity fraud"})
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    assert revoked.json["revoked_by"] == "ops" and revoked.json["revocation_reason"] == "identity fraud"
    assert client.post(path, headers=AUTH, json={"reason": "again"}).status_code == 409
    shown = client.get(f"/verify/{code}.json")
    assert shown.status_code == 200 and shown.json["status"] == "revoked" and shown.json["number"] == cert["number"]
    assert set(shown.json) == {"status", "number", "name", "programme", "issued_on", "revoked_on"}
    page = client.get(f"/verify/{code}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'data-status="revoked"' in page.text and cert["number"] in page.text
    assert "identity fraud" not in page.text and learners[0]["learner"]["email"] not in page.text

    # Re-issue: a new number and code; the old code stays revoked; no second re-issue while valid.
    again = client.post(f"/certificates/{cert['id']}/reissue", headers=AUTH)
    assert again.status_code == 201, again.json
    assert again.json["issue_no"] == 2 and again.json["status"] == "valid" and again.json["issued_by"] == "ops"
    assert again.json["number"].endswith("-000004") and again.json["verification_code"] != code
    assert client.get(f"/verify/{again.json['verification_code']}.json").json["status"] == "valid"
    assert client.get(f"/verify/{code}.json").json["status"] == "revoked"
    assert client.post(f"/certificates/{cert['id']}/reissue", headers=AUTH).status_code == 409
    assert client.post(f"/certificates/{issued[1]['id']}/reissue", headers=AUTH).status_code == 409

    unknown = client.get("/verify/not-a-real-code.json")
    assert unknown.status_code == 404 and unknown.json == {"status": "unknown"}
    assert client.get("/api/verify/not-a-real-code").status_code == 404
    assert 'data-status="unknown"' in client.get("/verify/not-a-real-code").text
    assert client.get("/certificates").status_code == 401

    topic = deployment.settings("certification").own_topic
    statements = [xapi.decode(r.value) for r in read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], topic, 5)]
    verbs = [s["verb"]["id"] for s in statements]
    assert verbs.count(xapi.EARNED.id) == 4 and verbs.count(xapi.REVOKED.id) == 1
    revocation = next(s for s in statements if s["verb"]["id"] == xapi.REVOKED.id)
    assert revocation["context"]["extensions"][xapi.EXT_REASON] == "identity fraud"
    assert revocation["actor"]["account"]["name"] == "ops"

    # The PDF opens, says the number, and its QR code leads to the verification page.
    current = again.json
    response = client.get(f"/certificates/{current['id']}.pdf", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    document = pdfium.PdfDocument(response.data)
    assert len(document) == 1
    text = document[0].get_textpage().get_text_range()
    assert current["number"] in text and current["learner_name"] in text and programme["title"] in text
    image = document[0].render(scale=2).to_pil()
    decoded = [found.text for found in zxingcpp.read_barcodes(image)]
    assert decoded == [current["verification_url"]]
    assert current["verification_url"].endswith(f"/verify/{current['verification_code']}")
    assert client.get(f"/certificates/{current['id']}.pdf").status_code == 401

    # Exports: the CSV list, and the PDFs in a zip with the list.
    listed = client.get(f"/cohorts/{cohort['id']}/certificates.csv", headers=AUTH)
    assert listed.status_code == 200 and listed.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(listed.text)))
    expected = [c["number"] for c in issued if c["id"] != cert["id"]] + [current["number"]]
    assert sorted(r["number"] for r in rows) == sorted(expected)
    everything = list(csv.DictReader(io.StringIO(
        client.get(f"/cohorts/{cohort['id']}/certificates.csv?status=all", headers=AUTH).text)))
    assert sorted(r["status"] for r in everything) == ["revoked", "valid", "valid", "valid"]
    archive = client.get(f"/cohorts/{cohort['id']}/certificates.zip", headers=AUTH)
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.data)) as zipped:
        names = sorted(zipped.namelist())
        assert names == sorted([f"certificates/{r['number']}.pdf" for r in rows] + ["certificates.csv"])
        first = next(name for name in names if name.endswith(".pdf"))
        number = first.removeprefix("certificates/").removesuffix(".pdf")
        assert number in pdfium.PdfDocument(zipped.read(first))[0].get_textpage().get_text_range()


def test_a_second_pass_after_issue_and_a_pass_for_another_test_change_nothing(deployment):
    programme, cohort, learners = cohort_with_learners(deployment, 1)
    learner = learners[0]
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    start = TODAY + timedelta(days=1)
    stray = final_test_passed(learner, dict(programme, final_test="https://elsewhere.test/test"), cohort, start)
    produce(deployment, deciding_statements(learner, programme, cohort, start)[:-1]
            + [("assessment", events.EventType.ATTEMPT_PASSED, stray)])
    eventually(lambda: _standing(client, learner) == "in_progress")
    time.sleep(1)
    produce(deployment, deciding_statements(learner, programme, cohort, start)[-1:] * 2)
    wait_for_certificates(client, 1)
    produce(deployment, deciding_statements(learner, programme, cohort, start + timedelta(hours=3))[-1:])
    time.sleep(2)
    assert client.get("/certificates", headers=AUTH).json["total"] == 1


def test_out_of_range_filters_get_clear_errors(deployment):
    client = deployment.app("certification").test_client()
    # A page past what the database holds; a moment whose UTC conversion overflows.
    huge = client.get("/standings", headers=AUTH, query_string={"page": 10**23})
    assert huge.status_code == 422 and set(huge.json["errors"]["query"]) == {"page"}
    odd = client.get("/certificates", headers=AUTH, query_string={"issued_from": "9999-12-31T23:59:59-23:59",
                                                                  "issued_to": "0001-01-01T00:00:00+01:00"})
    assert odd.status_code == 422 and set(odd.json["errors"]["query"]) == {"issued_from", "issued_to"}


def test_exports_name_their_file_safely_whatever_the_cohort_id(deployment):
    app = deployment.app("certification")
    client = app.test_client()
    # The id comes from the path into Content-Disposition; a control character there made
    # gunicorn refuse the response header (an HTML 500), a newline made Werkzeug raise.
    # Only a known cohort exports: give the read model one with such an id.
    from services.certification import tables as certification_tables
    with app.config["LEARNSTREAM_ENGINE"].begin() as conn:
        conn.execute(certification_tables.cohorts.insert().values(
            id='a\r\nb\x0e"\u00e9', programme_id="p", name="odd", agency=None))
    for suffix in ("csv", "zip"):
        response = client.get(f"/cohorts/a%0D%0Ab%0E%22%C3%A9/certificates.{suffix}", headers=AUTH)
        assert response.status_code == 200
        response.get_data()  # drain the stream
        response.close()
        header = response.headers["Content-Disposition"]
        assert header.isascii() and all(32 <= ord(ch) < 127 for ch in header), header
        assert header.startswith('attachment; filename="certificates-a__b___') and "%C3%A9" in header


def test_exporting_a_cohort_nobody_defined_is_a_404_not_an_empty_file(deployment):
    client = deployment.app("certification").test_client()
    for suffix in ("csv", "zip"):
        response = client.get(f"/cohorts/{uuid.uuid4()}/certificates.{suffix}", headers=AUTH)
        assert response.status_code == 404 and "cohort" in response.json["message"]


def test_late_is_decided_by_the_clock_for_learners_who_never_sent_a_statement(deployment):
    """Past the deadline, a learner who did nothing and one who did part of it in time are
    both late, without any statement after the deadline; before it, both are in progress."""
    programme, cohort, (idle, partial, done) = cohort_with_learners(deployment, 3)
    app = deployment.app("certification")
    client = app.test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    start = TODAY + timedelta(days=1)
    produce(deployment, deciding_statements(partial, programme, cohort, start)[:1]
            + deciding_statements(done, programme, cohort, start))
    wait_for_certificates(client, 1)
    eventually(lambda: _standing(client, partial) == "in_progress" and _standing(client, idle) == "in_progress")

    app.extensions["commands"].clock = lambda: DEADLINE + timedelta(hours=1)
    assert [_standing(client, e) for e in (idle, partial, done)] == ["late", "late", "qualified"]
    late = client.get("/standings", headers=AUTH, query_string={"cohort_id": cohort["id"], "standing": "late"}).json
    assert late["total"] == 2 and {i["registration"] for i in late["items"]} == {idle["id"], partial["id"]}
    assert client.get("/standings", headers=AUTH, query_string={"cohort_id": cohort["id"],
                                                                "standing": "in_progress"}).json["total"] == 0

    # A grace period moves the moment: within it, they are still in progress.
    assert client.put(f"/programmes/{programme['id']}/rules", headers=AUTH, json={"grace_days": 2}).status_code == 200
    assert [_standing(client, e) for e in (idle, partial, done)] == ["in_progress", "in_progress", "qualified"]
    app.extensions["commands"].clock = lambda: DEADLINE + timedelta(days=2, hours=1)
    assert [_standing(client, e) for e in (idle, partial)] == ["late", "late"]


def test_a_satisfied_cmi5_course_meets_the_modules_it_stands_for(deployment):
    """An LMS's satisfied course (cmi5, services/progress/cmi5) names the programme modules
    it completes: with the final test passed, the rule holds without any module's own
    statement (a waived AU has none), as progress counts it."""
    from services.progress.cmi5 import statements as cmi5_statements
    from services.progress.cmi5 import terms

    programme, cohort, (ana, bo) = cohort_with_learners(deployment, 2)
    client = deployment.app("certification").test_client()
    deployment.start_worker("enrollment")
    deployment.start_worker("certification")
    start = TODAY + timedelta(days=1)

    def course_satisfied(enrolment, modules):
        return ("lrs", events.EventType.LRS_STATEMENT, cmi5_statements.satisfied(
            xapi.agent(name=enrolment["learner"]["name"], email=enrolment["learner"]["email"]),
            "https://lms.test/cmi5/course", terms.TYPE_COURSE, {"en": "Course"}, enrolment["id"],
            str(uuid.uuid4()), "https://publisher.test/course", start, modules=modules))

    produce(deployment, [
        course_satisfied(ana, programme["required_modules"]),
        ("assessment", events.EventType.ATTEMPT_PASSED, final_test_passed(ana, programme, cohort, start)),
        course_satisfied(bo, programme["required_modules"][:1]),  # stands for one module of two
        ("assessment", events.EventType.ATTEMPT_PASSED, final_test_passed(bo, programme, cohort, start))])
    (certificate,) = wait_for_certificates(client, 1)
    assert certificate["registration"] == ana["id"]
    eventually(lambda: _standing(client, bo) == "in_progress", message="bo still misses a module")
