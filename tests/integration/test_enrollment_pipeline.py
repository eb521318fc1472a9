"""The walking skeleton end to end: enrollment API -> outbox -> relay -> Kafka ->
progress projection -> progress API, on a real broker and a real database."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from services.enrollment import tables as enrollment_tables
from services.progress import tables as progress_tables
from shared import db, events, xapi
from tests.support.flows import AUTH, cohort_counts, define_cohort, eventually, import_csv, learners_csv, read_topic


def test_enrolment_is_published_with_learner_key_and_headers(deployment):
    client = deployment.app("enrollment").test_client()
    programme, cohort = define_cohort(client)
    enrolment = client.post(f"/cohorts/{cohort['id']}/enrolments", headers=AUTH,
                            json={"name": "Ana", "email": "Ana@Example.org", "organisation": "Tax"}).json
    deployment.start_worker("enrollment")

    topic = deployment.settings("enrollment").own_topic
    records = read_topic(deployment.env["KAFKA_BOOTSTRAP_SERVERS"], topic, expected=3)
    by_type = {events.routing(r.headers)[1]: r for r in records}
    assert set(by_type) == {events.EventType.PROGRAMME_DEFINED, events.EventType.COHORT_DEFINED,
                            events.EventType.LEARNER_ENROLLED}
    record = by_type[events.EventType.LEARNER_ENROLLED]
    stmt = xapi.decode(record.value)
    assert record.key.decode() == enrolment["learner_key"] == xapi.learner_key(xapi.agent(email="ana@example.org"))
    headers = dict(record.headers)
    assert headers["ce_source"] == b"/learnstream/enrollment"
    assert headers["ce_type"] == b"dev.learnstream.enrolment.registered"
    assert headers["ce_id"] == stmt["id"].encode() and headers["ce_subject"] == record.key
    assert headers["ce_specversion"] == b"1.0" and headers["content-type"] == b"application/json"
    assert headers["ce_dataschema"] == b"https://learnstream.dev/schemas/events/enrolment.registered.json"
    assert abs(xapi.parse_timestamp(headers["ce_time"].decode()) - xapi.parse_timestamp(stmt["stored"])) < timedelta(
        seconds=60)
    assert "source" not in headers and "event-type" not in headers  # the first generation is read, not written
    assert stmt["verb"]["id"] == xapi.REGISTERED.id
    assert stmt["actor"]["mbox"] == "mailto:ana@example.org"
    assert stmt["context"]["registration"] == enrolment["id"]
    assert xapi.context_activity(stmt, "parent")["id"] == programme["activity_id"]
    assert xapi.context_activity(stmt, "grouping")["id"] == cohort["activity_id"]
    assert stmt["context"]["extensions"][xapi.EXT_DEADLINE] == "2026-11-12T00:00:00.000Z"


def test_read_model_follows_imports_and_withdrawals(deployment):
    enrollment = deployment.app("enrollment").test_client()
    progress = deployment.app("progress").test_client()
    _, cohort = define_cohort(enrollment)
    deployment.start_worker("enrollment")
    deployment.start_worker("progress")

    report = import_csv(enrollment, cohort["id"], learners_csv(120))
    assert report == {"rows": 120, "enrolled": 120, "already_enrolled": 0, "rejected": []}
    eventually(lambda: (cohort_counts(progress, cohort["id"]) or {}).get("enrolled") == 120,
               message="120 enrolled in the read model")

    first = enrollment.get(f"/enrolments?cohort_id={cohort['id']}&page_size=1", headers=AUTH).json["items"][0]
    assert enrollment.post(f"/enrolments/{first['id']}/withdrawal", headers=AUTH,
                           json={"reason": "moved agency"}).status_code == 200
    counts = eventually(lambda: (c := cohort_counts(progress, cohort["id"])) and c["withdrawn"] == 1 and c,
                        message="withdrawal in the read model")
    assert counts["enrolled"] == 119
    learners = progress.get(f"/cohorts/{cohort['id']}/learners?state=withdrawn", headers=AUTH).json
    assert [row["registration"] for row in learners["items"]] == [first["id"]]
    # Personal data stays behind credentials.
    assert progress.get(f"/cohorts/{cohort['id']}/learners").status_code == 401


def test_importing_the_same_file_twice_enrols_nobody_twice(deployment):
    enrollment = deployment.app("enrollment").test_client()
    progress = deployment.app("progress").test_client()
    _, cohort = define_cohort(enrollment)
    text = learners_csv(40)
    assert import_csv(enrollment, cohort["id"], text)["enrolled"] == 40
    again = import_csv(enrollment, cohort["id"], text)
    assert again == {"rows": 40, "enrolled": 0, "already_enrolled": 40, "rejected": []}
    deployment.start_worker("enrollment")
    deployment.start_worker("progress")
    eventually(lambda: (cohort_counts(progress, cohort["id"]) or {}).get("enrolled") == 40)
    engine = db.create_engine(deployment.settings("enrollment").database_url)
    with engine.connect() as conn:
        registered = conn.scalar(sa.select(sa.func.count()).select_from(enrollment_tables.outbox)
                                 .where(enrollment_tables.outbox.c.event_type == events.EventType.LEARNER_ENROLLED))
    engine.dispose()
    assert registered == 40


def test_malformed_csv_rows_are_reported_and_good_rows_kept(deployment):
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment)
    text = "name,email,organisation\nAna,ana@example.org,Tax\nBo,bo-at-example.org,Tax\n,cy@example.org,Tax\n"
    report = import_csv(enrollment, cohort["id"], text)
    assert report["enrolled"] == 1
    assert [(r["row"], sorted(r["errors"])) for r in report["rejected"]] == [(3, ["email"]), (4, ["name"])]
    listed = enrollment.get(f"/enrolments?cohort_id={cohort['id']}", headers=AUTH).json
    assert [item["learner"]["email"] for item in listed["items"]] == ["ana@example.org"]

    bad_header = enrollment.post(f"/cohorts/{cohort['id']}/enrolments/import", headers=AUTH,
                                 data="fullname,mail\nAna,ana@example.org\n", content_type="text/csv")
    assert bad_header.status_code == 422 and "file" in bad_header.json["errors"]["json"]
    not_utf8 = enrollment.post(f"/cohorts/{cohort['id']}/enrolments/import", headers=AUTH,
                               data="name,email\nJos\xe9,j@example.org\n".encode("latin-1"), content_type="text/csv")
    assert not_utf8.status_code == 422 and "UTF-8" in not_utf8.json["message"]
    # A field past the csv module's limit (128 KiB) is a 422 naming the file and line, not a 500.
    huge = enrollment.post(f"/cohorts/{cohort['id']}/enrolments/import", headers=AUTH,
                           data=f"name,email\nEve,eve@example.org\n{'x' * 200_000},z@example.org\n",
                           content_type="text/csv")
    assert huge.status_code == 422 and set(huge.json["errors"]["json"]) == {"file"}
    assert "line 3" in huge.json["message"], huge.json
    as_form = enrollment.post(f"/cohorts/{cohort['id']}/enrolments/import", headers=AUTH,
                              data={"file": (__import__("io").BytesIO(b"name,email\nDee,dee@example.org\n"), "x.csv")},
                              content_type="multipart/form-data")
    assert as_form.status_code == 200 and as_form.json["enrolled"] == 1


def test_malformed_requests_get_clear_errors_and_change_nothing(deployment):
    enrollment = deployment.app("enrollment").test_client()
    programme, cohort = define_cohort(enrollment)
    cases = [
        ("post", "/programmes", {"json": {"code": "bad code", "title": "T", "required_modules": ["nope"],
                                          "final_test": "https://x.test/t", "window_days": 0}},
         422, {"code", "required_modules", "window_days"}),
        ("post", "/programmes", {"json": {"title": "T", "surprise": 1}}, 422,
         {"code", "required_modules", "final_test", "surprise"}),
        ("post", "/cohorts", {"json": {"programme_id": programme["id"], "name": "W", "agency": "A",
                                       "accounts_issued_at": "next tuesday"}}, 422, {"accounts_issued_at"}),
        ("post", "/cohorts", {"json": {"programme_id": "missing", "name": "W", "agency": "A",
                                       "accounts_issued_at": "2026-11-02"}}, 404, {"programme_id"}),
        ("post", f"/cohorts/{cohort['id']}/enrolments", {"json": {"name": "No id"}}, 422, {"email"}),
        ("post", f"/cohorts/{cohort['id']}/enrolments",
         {"json": {"name": "Half", "account_home_page": "https://lms.test"}}, 422, {"account_name"}),
        ("post", "/programmes", {"data": "{oops", "content_type": "application/json"}, 400, None),
        ("post", "/programmes", {"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, 400, None),
        ("post", "/programmes", {"data": "code=x", "content_type": "application/x-www-form-urlencoded"}, 415, None),
        ("get", "/enrolments?page=0&status=gone", {}, 422, {"page", "status"}),
        # Numbers past what the database holds, and moments past what a datetime holds.
        ("get", f"/programmes?page={10**23}", {}, 422, {"page"}),
        ("get", f"/cohorts?wave={10**23}", {}, 422, {"wave"}),
        ("post", "/cohorts", {"json": {"programme_id": programme["id"], "name": "Big", "agency": "A",
                                       "wave": 10**20, "accounts_issued_at": "2026-11-02"}}, 422, {"wave"}),
        ("post", "/cohorts", {"json": {"programme_id": programme["id"], "name": "Late", "agency": "A",
                                       "accounts_issued_at": "9999-12-31"}}, 422, {"accounts_issued_at"}),
        ("post", "/cohorts", {"json": {"programme_id": programme["id"], "name": "Early", "agency": "A",
                                       "accounts_issued_at": "0001-01-01T00:00:00+01:00"}}, 422,
         {"accounts_issued_at"}),
        # NUL: PostgreSQL text cannot hold it (a 500 there), SQLite stored it.
        ("post", "/programmes", {"json": {"code": "NUL", "title": "T\x00", "required_modules": ["https://x.test/m"],
                                          "final_test": "https://x.test/t"}}, 422, {"title"}),
        ("post", f"/cohorts/{cohort['id']}/enrolments", {"json": {"name": "Nul", "email": "n@example.org",
                                                                  "organisation": "a\x00"}}, 422, {"organisation"}),
        ("get", "/enrolments?organisation=a%00b", {}, 422, {"organisation"}),
        ("get", "/programmes/a%00b", {}, 422, None),
        ("post", f"/cohorts/{cohort['id']}/enrolments/import",
         {"data": "name,email\nNul\x00,n@example.org\n", "content_type": "text/csv"}, 422, {"file"}),
    ]
    engine = db.create_engine(deployment.settings("enrollment").database_url)
    with engine.connect() as conn:
        before = conn.scalar(sa.select(sa.func.count()).select_from(enrollment_tables.outbox))
    for method, path, kwargs, status, fields in cases:
        response = getattr(enrollment, method)(path, headers=AUTH, **kwargs)
        assert response.status_code == status, (path, response.json)
        assert response.json["code"] == status and response.json.get("message") or response.json.get("errors")
        if fields:
            located = response.json["errors"].get("json") or response.json["errors"].get("query") or {}
            assert set(located) == fields, (path, response.json)
    with engine.connect() as conn:
        after = conn.scalar(sa.select(sa.func.count()).select_from(enrollment_tables.outbox))
    engine.dispose()
    assert after == before


def test_every_data_endpoint_needs_credentials(deployment):
    from shared import permissions

    for service in ("enrollment", "progress"):
        app = deployment.app(service)
        client = app.test_client()
        routes = app.url_map.bind("localhost")
        spec = client.get("/openapi.json").json
        for path, operations in spec["paths"].items():
            concrete = path.replace("{", "").replace("}", "")
            for method in set(operations) & {"get", "post", "put", "patch", "delete"}:
                rule, _ = routes.match(concrete, method=method.upper(), return_rule=True)
                if permissions.needed(service, method.upper(), rule.rule) == permissions.PUBLIC:
                    continue  # open by design: a cmi5 AU's fetch URL and package files (shared/permissions.py)
                response = getattr(client, method)(concrete, json={})
                assert response.status_code == 401, (service, method, path)
                wrong = getattr(client, method)(concrete, json={}, headers={"Authorization": "Basic b3BzOm5vcGU="})
                assert wrong.status_code == 401, (service, method, path)
        assert client.get("/healthz").status_code == 200


def test_progress_read_model_rebuilds_to_the_same_rows(deployment):
    enrollment = deployment.app("enrollment").test_client()
    progress = deployment.app("progress").test_client()
    _, cohort = define_cohort(enrollment)
    import_csv(enrollment, cohort["id"], learners_csv(60))
    some = enrollment.get(f"/enrolments?cohort_id={cohort['id']}&page_size=5", headers=AUTH).json["items"]
    for item in some:
        enrollment.post(f"/enrolments/{item['id']}/withdrawal", headers=AUTH, json={})
    deployment.start_worker("enrollment")
    deployment.start_worker("progress")
    eventually(lambda: (cohort_counts(progress, cohort["id"]) or {}).get("withdrawn") == 5)
    deployment.stop_workers()

    from services.progress.service import SERVICE
    from shared.consumer import ProjectionRunner

    settings = deployment.settings("progress")
    engine = db.create_engine(settings.database_url)
    live = _snapshot(engine)
    runner = ProjectionRunner(settings, engine, SERVICE.projection(settings), SERVICE.offsets, SERVICE.processed)
    assert runner.rebuild(progress=False) == 60 + 5 + 2
    assert _snapshot(engine) == live
    engine.dispose()


def _snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {table.name: sorted(tuple(row) for row in conn.execute(sa.select(table)))
                for table in (progress_tables.programmes, progress_tables.cohorts, progress_tables.learner_enrolments)}


def test_a_fractional_or_boolean_number_is_a_422_naming_the_field_and_changes_nothing(deployment):
    client = deployment.app("enrollment").test_client()
    programme, _ = define_cohort(client)
    for wave in (1.5, True):
        response = client.post("/cohorts", headers=AUTH, json={
            "programme_id": programme["id"], "name": "rounded", "agency": "Revenue agency", "wave": wave,
            "accounts_issued_at": "2026-11-02"})
        assert response.status_code == 422 and "wave" in response.json["errors"]["json"], response.json
    names = [c["name"] for c in client.get("/cohorts", headers=AUTH).json["items"]]
    assert "rounded" not in names


def test_a_method_a_resource_does_not_allow_is_a_json_405_with_allow(deployment):
    client = deployment.app("enrollment").test_client()
    response = client.delete("/programmes", headers=AUTH)
    assert response.status_code == 405 and response.is_json
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in response.json["message"]


def test_an_unknown_query_parameter_is_a_422_naming_it(deployment):
    client = deployment.app("enrollment").test_client()
    define_cohort(client)
    mistyped = client.get("/cohorts?page_sise=5", headers=AUTH)  # not silently page_size=100
    assert mistyped.status_code == 422 and "page_sise" in mistyped.json["errors"]["query"], mistyped.json
    assert client.get("/cohorts?page_size=5", headers=AUTH).status_code == 200


def test_a_query_parameter_on_an_endpoint_that_takes_none_is_a_422_naming_it(deployment):
    client = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(client)
    assert client.get(f"/cohorts/{cohort['id']}", headers=AUTH).status_code == 200
    asked = client.get(f"/cohorts/{cohort['id']}?fields=name", headers=AUTH)
    assert asked.status_code == 422 and asked.json["errors"]["query"] == {"fields": ["Unknown field."]}, asked.json
    assert "'fields'" in asked.json["message"]


def test_a_chunked_csv_over_the_limit_is_a_413_and_enrols_nobody(deployment):
    """Sent without Content-Length (chunked), a body over the limit used to be cut at
    the limit: the first 32 MB of learners enrolled, the rest silently dropped."""
    import io

    from shared.http import MAX_BODY_BYTES

    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment)
    url = f"/cohorts/{cohort['id']}/enrolments/import"
    chunked = {"wsgi.input_terminated": True, "CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}
    row = b"Learner,learner@example.org,Tax\n"
    huge = b"name,email,organisation\n" + row * (MAX_BODY_BYTES // len(row) + 10)
    refused = enrollment.post(url, headers=AUTH, input_stream=io.BytesIO(huge), content_type="text/csv",
                              environ_overrides=chunked)
    assert refused.status_code == 413 and refused.is_json, refused.data[:200]
    assert enrollment.get(f"/enrolments?cohort_id={cohort['id']}", headers=AUTH).json["total"] == 0
    small = b"name,email,organisation\nAna,ana@example.org,Tax\nBo,bo@example.org,Tax\n"
    accepted = enrollment.post(url, headers=AUTH, input_stream=io.BytesIO(small), content_type="text/csv",
                               environ_overrides=chunked)
    assert accepted.status_code == 200 and accepted.json["enrolled"] == 2, accepted.json
