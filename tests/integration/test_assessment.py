"""Assessment end to end: enrollment API -> Kafka -> assessment projection; attempts over
HTTP with their statements through the outbox; LMS results from the LRS topic; rebuild."""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa

from services.assessment import tables as t
from services.assessment.service import SERVICE
from shared import bus, db, events, xapi
from shared.consumer import ProjectionRunner
from tests.support import contract
from tests.support.flows import AUTH, eventually

NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    """The assessment service's clock, moved by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def bank(count=6, topics=("security", "data")):
    questions = []
    for topic in topics:
        for i in range(count):
            questions.append({"id": f"{topic}-{i}", "text": f"{topic} question {i}?", "type": "single_choice",
                              "topic": topic, "options": ["right", "wrong"], "correct": "right"})
    return {"questions": questions}


def prepared(deployment, learners=1, **final_test):
    """A programme, a cohort and enrolled learners, known to the assessment service, with
    a bank and a final test defined there."""
    enrollment = deployment.app("enrollment").test_client()
    app = deployment.app("assessment")
    clock = Clock(NOW)
    app.extensions["commands"].clock = clock
    client = app.test_client()
    code = f"DS{uuid.uuid4().hex[:6]}"
    programme = enrollment.post("/programmes", headers=AUTH, json={
        "code": code, "title": "Digital skills", "required_modules": [f"https://learnstream.test/{code}/m1"],
        "final_test": f"https://learnstream.test/{code}/final-test"}).json
    cohort = enrollment.post("/cohorts", headers=AUTH, json={
        "programme_id": programme["id"], "name": "Wave 1", "agency": "Revenue agency",
        "accounts_issued_at": (NOW - timedelta(days=1)).isoformat()}).json
    enrolments = [enrollment.post(f"/cohorts/{cohort['id']}/enrolments", headers=AUTH,
                                  json={"name": f"Learner {i}", "email": f"learner{i}@example.org"}).json
                  for i in range(learners)]
    deployment.start_worker("enrollment")
    deployment.start_worker("assessment")
    for enrolment in enrolments:
        eventually(lambda url=f"/results/{enrolment['id']}": client.get(url, headers=AUTH).status_code == 200,
                   message="enrolment known to assessment")
    assert client.post(f"/programmes/{programme['id']}/question-bank", headers=AUTH, json=bank()).status_code == 201
    definition = {"question_count": 4, "time_limit_minutes": 30, "pass_mark": 0.7, "max_attempts": 2} | final_test
    response = client.put(f"/programmes/{programme['id']}/final-test", headers=AUTH, json=definition)
    assert response.status_code == 200, response.json
    return SimpleNamespace(enrollment=enrollment, client=client, app=app, clock=clock, programme=programme,
                           cohort=cohort, enrolments=enrolments, registration=enrolments[0]["id"])


def answers(paper: dict, right: bool = True) -> dict:
    return {"answers": {q["id"]: "right" if right else "wrong" for q in paper["questions"]}}


def result(client, registration, **expected):
    def check():
        found = client.get(f"/results/{registration}", headers=AUTH).json
        return found if all(found.get(k) == v for k, v in expected.items()) else None
    return eventually(check, message=f"result {expected}")


def outbox_statements(deployment, event_type=None) -> list[dict]:
    engine = db.create_engine(deployment.settings("assessment").database_url)
    try:
        with engine.connect() as conn:
            query = sa.select(t.outbox.c.payload).order_by(t.outbox.c.id)
            if event_type:
                query = query.where(t.outbox.c.event_type == event_type)
            return [xapi.decode(bytes(p)) for p in conn.scalars(query)]
    finally:
        engine.dispose()


def test_bank_import_is_validated_and_versioned(deployment):
    env = prepared(deployment)
    url = f"/programmes/{env.programme['id']}/question-bank"
    bad = bank()
    bad["questions"][1]["correct"] = "maybe"
    bad["questions"][2]["id"] = bad["questions"][0]["id"]
    response = env.client.post(url, headers=AUTH, json=bad)
    assert response.status_code == 422
    errors = response.json["errors"]["json"]
    assert "'maybe' is not one of" in errors["questions[1].correct"][0]
    assert "duplicate question id" in errors["questions[2].id"][0]
    shape = env.client.post(url, headers=AUTH, json={"questions": [{"id": "q", "type": "essay"}]})
    assert shape.status_code == 422 and "type" in shape.json["errors"]["json"]["questions"]["0"]
    broken = env.client.post(url, headers=AUTH, data='{"questions": [', content_type="application/json")
    assert broken.status_code == 400 and broken.json["errors"] == {"json": ["Invalid JSON body."]}
    huge = env.client.get(f"{url}/versions/{10**23}", headers=AUTH)
    assert huge.status_code == 404 and set(huge.json["errors"]["json"]) == {"version"}
    long_field = env.client.post(url, headers=AUTH, content_type="text/csv",
                                 data=f"id,type,text,options,correct\nq1,true_false,{'x' * 200_000},,true\n")
    assert long_field.status_code == 422 and set(long_field.json["errors"]["json"]) == {"file"}
    assert "line 2" in long_field.json["message"], long_field.json

    csv_text = "id,type,topic,text,options,correct\n" + "".join(
        f"c{i},single_choice,security,CSV question {i},right|wrong,right\n" for i in range(5))
    response = env.client.post(url, headers=AUTH, data=csv_text, content_type="text/csv")
    assert response.status_code == 201 and response.json["version"] == 2 and response.json["question_count"] == 5
    assert env.client.get(url, headers=AUTH).json["version"] == 2
    assert env.client.get(f"{url}/versions/1", headers=AUTH).json["question_count"] == 12
    # The test draws 4 per attempt; a bank of 2 on a topic cannot serve 3 per topic.
    response = env.client.put(f"/programmes/{env.programme['id']}/final-test", headers=AUTH, json={
        "per_topic": {"security": 6}, "time_limit_seconds": 600, "pass_mark": 0.7})
    assert response.status_code == 422 and "5 questions on topic 'security'" in response.json["message"]
    small = env.client.post(url, headers=AUTH, json=bank(count=1))  # 2 questions; the test draws 4
    assert small.status_code == 422 and "the bank has 2 questions" in small.json["message"]
    assert env.client.get(url).status_code == 401


def test_enrolment_to_passed_with_statements_and_read_models(deployment):
    env = prepared(deployment, learners=2)
    started = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration})
    assert started.status_code == 201, started.json
    paper = started.json
    assert paper["number"] == 1 and len(paper["questions"]) == 4 and paper["status"] == "open"
    assert all("correct" not in q for q in paper["questions"])
    result(env.client, env.registration, status="in_progress", attempts_used=1)

    # A new bank version does not change the drawn paper.
    assert env.client.post(f"/programmes/{env.programme['id']}/question-bank", headers=AUTH,
                           json=bank(count=8)).status_code == 201
    mixed = answers(paper)
    mixed["answers"][paper["questions"][0]["id"]] = "wrong"
    submitted = env.client.post(f"/attempts/{paper['id']}/submission", headers=AUTH, json=mixed)
    assert submitted.status_code == 200, submitted.json
    assert (submitted.json["score"], submitted.json["success"], submitted.json["status"]) == (0.75, True, "submitted")
    assert env.client.post(f"/attempts/{paper['id']}/submission", headers=AUTH, json=mixed).status_code == 409

    enrolled = next(s for s in deployment_enrolment_statements(deployment)
                    if s["context"]["registration"] == env.registration)
    attempted, scored, passed = outbox_statements(deployment)[1:]
    for stmt in (attempted, scored, passed):
        assert stmt["actor"] == enrolled["actor"]
        assert stmt["context"]["registration"] == env.registration
        assert xapi.context_activity(stmt, "parent")["id"] == env.programme["activity_id"]
        assert xapi.context_activity(stmt, "grouping")["id"] == env.cohort["activity_id"]
        assert stmt["object"]["id"] == env.programme["final_test"]
        assert stmt["context"]["extensions"][xapi.EXT_ATTEMPT]["number"] == 1
    assert [s["verb"]["id"] for s in (attempted, scored, passed)] == [
        xapi.ATTEMPTED.id, xapi.SCORED.id, "http://adlnet.gov/expapi/verbs/passed"]
    assert passed["result"]["score"]["scaled"] == 0.75 and passed["result"]["success"] is True
    assert passed["result"]["extensions"][xapi.EXT_ATTEMPT]["number"] == 1

    learner = result(env.client, env.registration, status="passed")
    assert (learner["attempts_used"], learner["best_score"], learner["latest_score"]) == (1, 0.75, 0.75)
    assert learner["decided_at"] == passed["timestamp"].replace(".000Z", "Z")
    assert [a["source"] for a in learner["attempts"]] == ["assessment"]
    cohort = env.client.get(f"/cohorts/{env.cohort['id']}/results?page_size=1", headers=AUTH).json
    assert cohort["total"] == 2 and len(cohort["items"]) == 1
    assert cohort["counts"] == {"not_attempted": 1, "in_progress": 0, "passed": 1, "failed": 0, "withdrawn": 0}
    passed_only = env.client.get(f"/programmes/{env.programme['id']}/results?status=passed", headers=AUTH).json
    assert [r["registration"] for r in passed_only["items"]] == [env.registration]
    again = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration})
    assert again.status_code == 409 and "already passed" in again.json["message"]


def deployment_enrolment_statements(deployment) -> list[dict]:
    from services.enrollment import tables as et

    engine = db.create_engine(deployment.settings("enrollment").database_url)
    try:
        with engine.connect() as conn:
            return [xapi.decode(bytes(p)) for p in conn.scalars(
                sa.select(et.outbox.c.payload).where(et.outbox.c.event_type == events.EventType.LEARNER_ENROLLED))]
    finally:
        engine.dispose()


def test_attempt_rules_over_http(deployment):
    env = prepared(deployment, learners=3, max_attempts=2, counting="last")
    first, second, third = (e["id"] for e in env.enrolments)
    assert env.client.post("/attempts", headers=AUTH, json={"registration": "nobody"}).status_code == 404

    for number in (1, 2):
        paper = env.client.post("/attempts", headers=AUTH, json={"registration": first}).json
        assert paper["number"] == number
        open_again = env.client.post("/attempts", headers=AUTH, json={"registration": first})
        assert open_again.status_code == 409 and "still open" in open_again.json["message"]
        assert env.client.post(f"/attempts/{paper['id']}/submission", headers=AUTH,
                               json=answers(paper, right=False)).json["success"] is False
    exhausted = env.client.post("/attempts", headers=AUTH, json={"registration": first})
    assert exhausted.status_code == 409 and "all 2 allowed" in exhausted.json["message"]
    result(env.client, first, status="failed", attempts_used=2)

    assert env.enrollment.post(f"/enrolments/{second}/withdrawal", headers=AUTH, json={}).status_code == 200
    result(env.client, second, enrolment_status="withdrawn")
    withdrawn = env.client.post("/attempts", headers=AUTH, json={"registration": second})
    assert withdrawn.status_code == 403 and "withdrew" in withdrawn.json["message"]

    env.clock.advance(days=10)  # past the enrolment's deadline
    late = env.client.post("/attempts", headers=AUTH, json={"registration": third})
    assert late.status_code == 403 and "deadline" in late.json["message"]
    counts = env.client.get(f"/cohorts/{env.cohort['id']}/results", headers=AUTH).json["counts"]
    # The withdrawn learner counts as withdrawn, and nowhere else (as in progress's views).
    assert (counts["failed"], counts["not_attempted"], counts["withdrawn"]) == (1, 1, 1)
    listed = env.client.get(f"/cohorts/{env.cohort['id']}/results?status=not_attempted", headers=AUTH).json
    assert [r["registration"] for r in listed["items"]] == [third]
    listed = env.client.get(f"/cohorts/{env.cohort['id']}/results?status=withdrawn", headers=AUTH).json
    assert [r["registration"] for r in listed["items"]] == [second]


def test_attempt_racing_its_time_limit(deployment):
    env = prepared(deployment, max_attempts=3, time_limit_minutes=10)
    paper = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    ids = [q["id"] for q in paper["questions"]]
    env.clock.advance(minutes=9, seconds=59)
    saved = env.client.put(f"/attempts/{paper['id']}/answers", headers=AUTH,
                           json={"answers": {ids[0]: "right", ids[1]: "right"}})
    assert saved.status_code == 200 and saved.json["answers"] == {ids[0]: ["right"], ids[1]: ["right"]}
    env.clock.advance(seconds=2)  # the limit passes between saving and submitting
    late = env.client.post(f"/attempts/{paper['id']}/submission", headers=AUTH, json=answers(paper))
    assert late.status_code == 200
    assert (late.json["status"], late.json["score"], late.json["success"]) == ("timed_out", 0.5, False)
    assert late.json["finished_at"] == paper["expires_at"]

    # Exactly at the limit is still in time.
    paper = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    env.clock.advance(minutes=10)
    in_time = env.client.post(f"/attempts/{paper['id']}/submission", headers=AUTH, json=answers(paper)).json
    assert (in_time["status"], in_time["score"]) == ("submitted", 1.0)


def test_an_abandoned_attempt_is_closed_when_read_and_by_the_sweep(deployment):
    env = prepared(deployment, learners=2, max_attempts=3, time_limit_minutes=10)
    first = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    other = env.client.post("/attempts", headers=AUTH, json={"registration": env.enrolments[1]["id"]}).json
    env.client.put(f"/attempts/{first['id']}/answers", headers=AUTH,
                   json={"answers": {first["questions"][0]["id"]: "right"}})
    env.clock.advance(minutes=11)
    # A lazy close on read racing a late submission: one closes it, once.
    responses = race(env.app, [("get", f"/attempts/{first['id']}", None),
                               ("post", f"/attempts/{first['id']}/submission", answers(first))])
    assert [r.status_code for r in responses] in ([200, 200], [200, 409])
    read = env.client.get(f"/attempts/{first['id']}", headers=AUTH).json
    assert (read["status"], read["score"]) == ("timed_out", 0.25)
    late_save = env.client.put(f"/attempts/{other['id']}/answers", headers=AUTH, json={"answers": {}})
    assert late_save.status_code == 409 and "time limit" in late_save.json["message"]
    assert env.client.post("/attempts/close-expired", headers=AUTH).json == {"closed": 0}
    third = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    env.clock.advance(minutes=11)
    assert env.client.post("/attempts/close-expired", headers=AUTH).json == {"closed": 1}
    assert len(outbox_statements(deployment, events.EventType.ATTEMPT_FAILED)) == 3
    learner = result(env.client, env.registration, attempts_used=2, status="in_progress",  # 2 of 3: one left
                     latest_score=0.0)  # the second closed too, not merely open
    assert learner["latest_score"] == 0.0 and third["number"] == 2


def race(app, requests):
    """Send requests at the same moment from separate threads; responses in request order."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def send(index, method, url, body):
        client = app.test_client()
        barrier.wait()
        responses[index] = getattr(client, method)(url, headers=AUTH, json=body)

    threads = [threading.Thread(target=send, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


def test_two_submissions_of_one_attempt_at_once(deployment):
    env = prepared(deployment, max_attempts=5)
    for _ in range(3):
        paper = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
        body = answers(paper, right=False)
        responses = race(env.app, [("post", f"/attempts/{paper['id']}/submission", body)] * 2)
        assert sorted(r.status_code for r in responses) == [200, 409]
        loser = next(r for r in responses if r.status_code == 409)
        assert "already" in loser.json["message"]
    assert len(outbox_statements(deployment, events.EventType.ATTEMPT_SCORED)) == 3


def publish_lrs(deployment, statements):
    settings = deployment.settings("assessment")
    publisher = bus.Publisher(settings, role="test")
    publisher.publish((settings.topic("lrs"), xapi.learner_key(stmt["actor"]).encode(), xapi.encode(stmt),
                       events.statement_headers(contract.TEST_SOURCE, events.EventType.LRS_STATEMENT, stmt))
                      for stmt in statements)
    publisher.close()


def test_lms_results_count_and_rebuild_gives_the_same_rows(deployment):
    env = prepared(deployment, learners=4, max_attempts=2)
    ana, ben, cai, dee = (e["id"] for e in env.enrolments)
    lms = xapi.agent(name="Some LMS", account_home_page="https://lms.test", account_name="lms")
    reported = xapi.statement(
        xapi.agent(email="learner0@example.org"), xapi.PASSED,
        xapi.activity(env.programme["final_test"]), authority=lms,
        result={"success": True, "score": {"scaled": 0.9}}, timestamp=NOW - timedelta(hours=1))
    unrelated = xapi.statement(xapi.agent(email="learner0@example.org"), xapi.FAILED,
                               xapi.activity("https://learnstream.test/other-quiz"), authority=lms,
                               result={"success": False})
    publish_lrs(deployment, [reported, unrelated, reported])  # the duplicate counts once
    learner = result(env.client, ana, status="passed")
    assert learner["attempts_used"] == 1 and learner["attempts"][0]["source"] == "lrs"
    assert learner["decided_at"] == xapi.format_timestamp(NOW - timedelta(hours=1)).replace(".000Z", "Z")
    refused = env.client.post("/attempts", headers=AUTH, json={"registration": ana})
    assert refused.status_code == 409 and "already passed" in refused.json["message"]

    paper = env.client.post("/attempts", headers=AUTH, json={"registration": ben}).json
    env.client.post(f"/attempts/{paper['id']}/submission", headers=AUTH, json=answers(paper, right=False))
    env.client.post("/attempts", headers=AUTH, json={"registration": cai})
    env.enrollment.post(f"/enrolments/{dee}/withdrawal", headers=AUTH, json={})
    result(env.client, ben, status="in_progress", latest_score=0.0)  # 1 of 2, submitted
    result(env.client, cai, status="in_progress")
    result(env.client, dee, enrolment_status="withdrawn")
    # Tighter rules apply to the read model as soon as they are published.
    env.client.put(f"/programmes/{env.programme['id']}/final-test", headers=AUTH, json={
        "question_count": 4, "time_limit_minutes": 30, "pass_mark": 0.7, "max_attempts": 1})
    result(env.client, ben, status="failed")
    # The LMS takes its result back: voided, it no longer counts.
    publish_lrs(deployment, [xapi.statement(lms, xapi.VOIDED, {"objectType": "StatementRef", "id": reported["id"]},
                                            authority=lms)])
    assert result(env.client, ana, status="not_attempted")["attempts"] == []

    deployment.stop_workers()
    settings = deployment.settings("assessment")
    engine = db.create_engine(settings.database_url)
    try:
        live = snapshot(engine)
        runner = ProjectionRunner(settings, engine, SERVICE.projection(settings), SERVICE.offsets, SERVICE.processed)
        assert runner.rebuild(progress=False) > 0
        assert snapshot(engine) == live
    finally:
        engine.dispose()
    assert len(live["learner_results"]) == 4


def snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {table.name: sorted(tuple(map(repr, row)) for row in conn.execute(sa.select(table)))
                for table in t.READ_MODELS}


def test_the_worker_closes_an_abandoned_attempt_when_its_time_runs_out(deployment):
    """Nobody reads or submits it again: the worker's timer closes and scores it."""
    env = prepared(deployment, learners=1, max_attempts=2)
    assert env.client.put(f"/programmes/{env.programme['id']}/final-test", headers=AUTH, json={
        "question_count": 4, "time_limit_seconds": 1, "pass_mark": 0.7, "max_attempts": 2}).status_code == 200
    deployment.stop_workers()
    # The app's clock stands still at NOW; the worker's is the real one, already later.
    attempt = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    deployment.start_worker("assessment", timer_interval_seconds=0.5)
    learner = result(env.client, env.registration, attempts_used=1, status="in_progress",  # 1 of 2
                     latest_score=0.0)  # closed by the timer, not merely open
    assert learner["latest_score"] == 0.0
    finished = [s for s in outbox_statements(deployment, events.EventType.ATTEMPT_FAILED)
                if s["context"]["extensions"][xapi.EXT_ATTEMPT]["id"] == attempt["id"]]
    assert len(finished) == 1


def test_progress_and_assessment_agree_on_attempts_and_on_what_failed_means(deployment):
    """An attempt counts from its start in both services; a failure with attempts left is
    not "failed" in progress, and being out of attempts is, as the result statement says."""
    env = prepared(deployment, learners=1, max_attempts=2)
    deployment.start_worker("progress")
    progress = deployment.app("progress").test_client()

    def learner(**expected):
        def check():
            rows = progress.get(f"/cohorts/{env.cohort['id']}/learners", headers=AUTH).json.get("items") or [{}]
            row = rows[0]
            return row if all(row.get(k) == v for k, v in expected.items()) else None
        return eventually(check, message=f"progress learner {expected}")

    first = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    result(env.client, env.registration, status="in_progress", attempts_used=1)
    learner(final_test_status="in_progress", final_test_attempts=1)

    env.client.post(f"/attempts/{first['id']}/submission", headers=AUTH, json=answers(first, right=False))
    result(env.client, env.registration, status="in_progress", attempts_used=1, latest_score=0.0)  # attempts left
    learner(final_test_status="in_progress", final_test_attempts=1)
    assert progress.get(f"/cohorts/{env.cohort['id']}", headers=AUTH).json["failed"] == 0

    second = env.client.post("/attempts", headers=AUTH, json={"registration": env.registration}).json
    env.client.post(f"/attempts/{second['id']}/submission", headers=AUTH, json=answers(second, right=False))
    result(env.client, env.registration, status="failed", attempts_used=2)
    learner(final_test_status="failed", final_test_attempts=2)
    assert progress.get(f"/cohorts/{env.cohort['id']}", headers=AUTH).json["failed"] == 1
    [told] = [s["result"]["extensions"][xapi.EXT_ATTEMPT] for s in outbox_statements(
        deployment, events.EventType.ATTEMPT_FAILED)
        if s["context"]["extensions"][xapi.EXT_ATTEMPT]["id"] == second["id"]]
    assert (told["attempts_used"], told["attempts_allowed"]) == (2, 2)
