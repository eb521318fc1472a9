"""The LRS statement resource through the Flask app and a real database."""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from tests.support.lrs import V1, V2, LrsClient, agent, new_id, statement

pytestmark = pytest.mark.integration


@pytest.fixture
def lrs(deployment) -> LrsClient:
    return LrsClient(deployment.app("progress"))


def ids_of(response) -> list[str]:
    return [s["id"] for s in response.json["statements"]]


@pytest.mark.parametrize("version", [V1, V2])
def test_post_get_round_trip_sets_lrs_fields(lrs, version):
    posted = lrs.post(statement(), version)
    assert posted.status_code == 200, posted.json
    [sid] = posted.json
    got = lrs.get(version=version, query={"statementId": sid})
    assert got.status_code == 200
    assert got.headers["X-Experience-API-Version"] == version
    assert got.headers["X-Experience-API-Consistent-Through"]
    assert got.headers["Last-Modified"]
    body = got.json
    assert body["id"] == sid and body["authority"] == lrs.authority
    assert body["version"] == ("2.0.0" if version == V2 else "1.0.0")
    assert body["stored"] == body["timestamp"] and body["stored"].endswith("Z")


def test_batch_with_one_invalid_statement_is_rejected_whole(lrs):
    good, bad = statement(1), statement(2)
    bad["verb"] = {"id": "not an iri"}
    response = lrs.post([good, bad])
    assert response.status_code == 400
    assert lrs.get(query={"agent": orjson.dumps(agent(1)).decode()}).json["statements"] == []


def test_put_conflicts_and_idempotence(lrs):
    sid = new_id()
    assert lrs.put(statement(), sid).status_code == 204
    assert lrs.put(statement(), sid).status_code == 204  # same content: accepted, unchanged
    assert lrs.post({**statement(), "id": sid}).status_code == 200
    changed = statement(verb="http://adlnet.gov/expapi/verbs/attempted")
    assert lrs.put(changed, sid).status_code == 409
    assert lrs.post({**changed, "id": sid}).status_code == 409
    assert lrs.put(statement(), "not-a-uuid").status_code == 400
    assert lrs.put({**statement(), "id": new_id()}, sid).status_code == 400
    assert lrs.post([{**statement(), "id": sid}, {**statement(), "id": sid}]).status_code == 400


def test_voiding(lrs):
    target = lrs.post(statement(1)).json[0]
    voiding = {"actor": agent(1), "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": target}}
    voiding_id = lrs.post(voiding).json[0]
    assert lrs.get(query={"statementId": target}).status_code == 404
    assert lrs.get(query={"voidedStatementId": target}).json["id"] == target
    listed = ids_of(lrs.get(query={"verb": "http://adlnet.gov/expapi/verbs/experienced"}))
    assert target not in listed and voiding_id in listed  # the voiding statement targets a match
    # A voiding statement cannot itself be voided.
    lrs.post({**voiding, "object": {"objectType": "StatementRef", "id": voiding_id}})
    assert lrs.get(query={"statementId": voiding_id}).status_code == 200
    assert lrs.post({**voiding, "object": {"objectType": "Activity", "id": "http://x.example"}}).status_code == 400


def test_filters(lrs):
    reg = new_id()
    a1, a2 = agent(1), agent(2)
    s1 = lrs.post(statement(1, activity="http://example.org/act/A")).json[0]
    s2 = lrs.post(statement(2, verb="http://adlnet.gov/expapi/verbs/completed",
                            context={"registration": reg, "instructor": a1,
                                     "contextActivities": {"parent": {"id": "http://example.org/act/A"}}})).json[0]
    s3 = lrs.post({"actor": a2, "verb": {"id": "http://adlnet.gov/expapi/verbs/mentored"}, "object": a1}).json[0]
    q = lambda **kw: ids_of(lrs.get(query=kw))  # noqa: E731
    assert set(q(agent=orjson.dumps(a1).decode())) == {s1, s3}
    assert set(q(agent=orjson.dumps(a1).decode(), related_agents="true")) == {s1, s2, s3}
    assert q(verb="http://adlnet.gov/expapi/verbs/completed") == [s2]
    assert q(activity="http://example.org/act/A") == [s1]
    assert set(q(activity="http://example.org/act/A", related_activities="true")) == {s1, s2}
    assert q(registration=reg) == [s2]
    assert q(limit="1") == [s3]
    assert q(ascending="true")[:3] == [s1, s2, s3]
    stored = lrs.get(query={"statementId": s2}).json["stored"]
    assert set(q(since=stored)) == {s3}
    assert s2 in q(until=stored) and s3 not in q(until=stored)
    assert set(q(agent=orjson.dumps(lrs.authority).decode(), related_agents="true")) == {s1, s2, s3}


def test_paging_through_more(lrs):
    posted = lrs.post([statement(i) for i in range(7)]).json
    seen, page = [], lrs.get(query={"limit": "3"})
    while True:
        seen += ids_of(page)
        if not page.json["more"]:
            break
        more = urlparse(page.json["more"])
        assert more.path == "/xapi/statements"
        page = lrs.get(query={k: v[0] for k, v in parse_qs(more.query).items()})
        assert page.status_code == 200
    assert sorted(seen) == sorted(posted) and len(seen) == 7


def test_formats_and_languages(lrs):
    sid = lrs.post(statement()).json[0]
    ids = lrs.get(query={"statementId": sid, "format": "ids"}).json
    assert ids["object"] == {"id": "http://example.org/act/1"} and ids["verb"] == {"id": statement()["verb"]["id"]}
    assert set(ids["actor"]) == {"objectType", "mbox"}
    canonical = lrs.get(query={"statementId": sid, "format": "canonical"}, **{"Accept-Language": "fr-FR"}).json
    assert canonical["verb"]["display"] == {"fr-FR": "a vécu"}
    exact = lrs.get(query={"statementId": sid, "format": "exact"}, **{"Accept-Language": "fr-FR"}).json
    assert len(exact["verb"]["display"]) == 2
    assert lrs.get(query={"statementId": sid, "format": "full"}).status_code == 400


def test_activities_agents_and_about(lrs):
    lrs.post(statement())
    lrs.post(statement(activity="http://example.org/act/1") | {"object": {
        "id": "http://example.org/act/1", "definition": {"name": {"fr-FR": "Module un"}}}})
    activity = lrs.get("/xapi/activities", query={"activityId": "http://example.org/act/1"}).json
    assert activity["definition"]["name"] == {"en-US": "Module one", "de-DE": "Modul eins", "fr-FR": "Module un"}
    person = lrs.get("/xapi/agents", query={"agent": orjson.dumps(agent(1)).decode()}).json
    assert person == {"objectType": "Person", "name": ["Learner 1"], "mbox": ["mailto:learner1@example.org"]}
    about = lrs.client.get("/xapi/about")
    assert about.status_code == 200 and set(about.json["version"]) == {"1.0.3", "2.0.0"}
    assert lrs.client.head("/xapi/statements", headers=lrs.headers()).status_code == 200


def test_errors_are_400_never_422_or_500(lrs):
    assert lrs.client.post("/xapi/statements", data=b"{not json", content_type="application/json",
                           headers=lrs.headers()).status_code == 400
    assert lrs.get(query={"unknown": "1"}).status_code == 400
    assert lrs.get(query={"statementId": new_id(), "agent": "{}"}).status_code == 400
    assert lrs.get(query={"limit": "-1"}).status_code == 400
    assert lrs.get(query={"since": "yesterday"}).status_code == 400
    assert lrs.get(version=None).status_code == 400
    assert lrs.get(version="0.9").status_code == 400
    assert lrs.post({**statement(), "Verb": statement()["verb"]}).status_code == 400
    huge = b'{"x": "' + b"a" * (17 * 1024 * 1024) + b'"}'
    assert lrs.client.post("/xapi/statements", data=huge, content_type="application/json",
                           headers=lrs.headers()).status_code == 413
    assert lrs.client.post("/xapi/statements", data=b"x=1", content_type="text/plain",
                           headers=lrs.headers()).status_code == 400


def test_auth_and_scopes(lrs):
    assert lrs.client.get("/xapi/statements", headers={"X-Experience-API-Version": V2}).status_code == 401
    bad = lrs.headers() | {"Authorization": "Basic Zm9vOmJhcg=="}
    assert lrs.client.get("/xapi/statements", headers=bad).status_code == 401
    writer = lrs.with_scopes("statements/write")
    assert writer.post(statement()).status_code == 200
    assert writer.get().status_code == 403
    assert writer.get("/xapi/activities/state", query={"activityId": "http://x.example",
                                                      "agent": orjson.dumps(agent()).decode()}).status_code == 403
    reader = lrs.with_scopes("all/read")
    assert reader.get().status_code == 200 and reader.post(statement()).status_code == 403
    mine = lrs.with_scopes("statements/write", "statements/read/mine")
    own = mine.post(statement(5)).json[0]
    assert ids_of(mine.get()) == [own]
    assert mine.get(query={"statementId": lrs.post(statement(6)).json[0]}).status_code == 404


def test_alternate_request_syntax_only_in_1_0_3(lrs):
    sid = new_id()
    form = {"statementId": sid, "content": orjson.dumps(statement()).decode(),
            "Authorization": lrs.headers()["Authorization"], "X-Experience-API-Version": V1,
            "Content-Type": "application/json"}
    response = lrs.client.post("/xapi/statements?method=PUT", data=form)
    assert response.status_code == 204
    got = lrs.client.post("/xapi/statements?method=GET", data={"statementId": sid, **{
        k: form[k] for k in ("Authorization", "X-Experience-API-Version")}})
    assert got.status_code == 200 and got.json["id"] == sid
    assert lrs.client.post("/xapi/statements?method=GET", data={"X-Experience-API-Version": V2,
                                                                 "Authorization": form["Authorization"]},
                           headers={"X-Experience-API-Version": V2}).status_code == 400


def test_cors_preflight_needs_no_credentials(lrs):
    response = lrs.client.options("/xapi/statements", headers={"Origin": "https://player.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Experience-API-Version" in response.headers["Access-Control-Allow-Headers"]


def _multipart(statements, files: list[tuple[str, bytes]], boundary="xyz") -> bytes:
    chunks = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), orjson.dumps(statements), b"\r\n"]
    for ctype, content in files:
        chunks += [f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: binary\r\n"
                   f"X-Experience-API-Hash: {hashlib.sha256(content).hexdigest()}\r\n\r\n".encode(), content, b"\r\n"]
    return b"".join(chunks) + f"--{boundary}--".encode()


def test_attachments(lrs):
    content = b"certificate of attendance"
    sha2 = hashlib.sha256(content).hexdigest()
    declared = {"usageType": "http://example.org/usage/certificate", "display": {"en-US": "certificate"},
                "contentType": "text/plain", "length": len(content), "sha2": sha2}
    stmt = statement(attachments=[declared])
    headers = lrs.headers(Content_Type="multipart/mixed; boundary=xyz")
    posted = lrs.client.post("/xapi/statements", data=_multipart(stmt, [("text/plain", content)]), headers=headers)
    assert posted.status_code == 200, posted.json
    # Declared without a fileUrl but not sent, sent but not declared, or a wrong hash: 400.
    assert lrs.post(statement(attachments=[declared])).status_code == 400
    assert lrs.client.post("/xapi/statements", data=_multipart(statement(), [("text/plain", content)]),
                           headers=headers).status_code == 400
    tampered = _multipart(stmt, [("text/plain", content)]).replace(b"attendance", b"absence!!!")
    assert lrs.client.post("/xapi/statements", data=tampered, headers=headers).status_code == 400
    # fileUrl-only attachments need no part.
    assert lrs.post(statement(attachments=[{**declared, "fileUrl": "https://files.example/c.txt"}])).status_code == 200
    got = lrs.get(query={"statementId": posted.json[0], "attachments": "true"})
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("multipart/mixed")
    assert content in got.data and sha2.encode() in got.data


def test_a_thousand_concurrent_posts(lrs):
    def post(i):
        return lrs.app.test_client().post("/xapi/statements", data=orjson.dumps(statement(i)),
                                          content_type="application/json", headers=lrs.headers()).status_code
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(post, range(1000)))
    assert statuses == [200] * 1000, {s: statuses.count(s) for s in set(statuses)}
    page = lrs.get(query={"limit": "0"})
    total = len(page.json["statements"])
    while page.json["more"]:
        more = parse_qs(urlparse(page.json["more"]).query)
        page = lrs.get(query={"more": more["more"][0]})
        total += len(page.json["statements"])
    assert total == 1000, time.monotonic() - started


def test_concurrent_posts_share_commits_but_a_conflict_fails_only_its_own_request(lrs):
    """POSTs are grouped into shared transactions (shared.group_commit): one request's
    409 must neither fail its neighbours nor leave its own other statements behind."""
    taken = statement(1)
    taken["id"] = new_id()
    assert lrs.post(taken).status_code == 200
    clash = {**statement(2), "id": taken["id"]}  # the same id, other content
    innocent = {**statement(3), "id": new_id()}  # sent in the same array as the clash
    others = [{**statement(10 + i), "id": new_id()} for i in range(60)]

    def post(body):
        return lrs.app.test_client().post("/xapi/statements", data=orjson.dumps(body),
                                          content_type="application/json", headers=lrs.headers()).status_code
    with ThreadPoolExecutor(16) as pool:
        bodies = others[:30] + [[innocent, clash]] + others[30:]
        statuses = list(pool.map(post, bodies))
    assert statuses[30] == 409
    assert statuses[:30] + statuses[31:] == [200] * 60
    assert lrs.get(query={"statementId": innocent["id"]}).status_code == 404
    for sent in others:
        assert lrs.get(query={"statementId": sent["id"]}).status_code == 200
    assert lrs.get(query={"statementId": taken["id"]}).json["actor"] == taken["actor"]


@pytest.mark.parametrize("iri", ["http://example.org/a\x00b", "http://example.org/a\x07b", "http://example.org/\x7f"])
def test_an_iri_with_a_control_character_is_refused(lrs, iri):
    response = lrs.post(statement(activity=iri))
    assert response.status_code == 400 and "object.id" in response.json["error"]["message"]
    assert lrs.get().json["statements"] == []


def test_statement_posts_skip_flask_but_answer_exactly_as_the_flask_view_does(lrs):
    """`StatementIngest` answers POST /xapi/statements itself; the Flask view must give the
    same answer for the same request, in status, headers and body."""
    from prometheus_client import REGISTRY
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    ingest = lrs.app.wsgi_app
    assert type(ingest).__name__ == "StatementIngest"
    paths = {"ingest": Client(ingest, Response), "flask": Client(ingest.wsgi_app, Response)}
    no_auth = {"X-Experience-API-Version": V2}
    taken = new_id()
    assert lrs.post({**statement(), "id": taken}).status_code == 200
    cases = {
        "one": (orjson.dumps(statement()), lrs.headers(), "application/json"),
        "batch": (orjson.dumps([statement(1), statement(2)]), lrs.headers(V1), "application/json"),
        "same id, same content": (orjson.dumps({**statement(), "id": taken}), lrs.headers(), "application/json"),
        "same id, other content": (orjson.dumps({**statement(9), "id": taken}), lrs.headers(), "application/json"),
        "not json": (b"{nope", lrs.headers(), "application/json"),
        "invalid": (orjson.dumps({**statement(), "Verb": {}}), lrs.headers(), "application/json"),
        "form body": (b"x=1", lrs.headers(), "application/x-www-form-urlencoded"),
        "no credentials": (orjson.dumps(statement()), no_auth, "application/json"),
        "no version": (orjson.dumps(statement()), lrs.headers(version=None), "application/json"),
        "unknown version": (orjson.dumps(statement()), lrs.headers(version="0.9"), "application/json"),
        "read-only key": (orjson.dumps(statement()), lrs.with_scopes("all/read").headers(), "application/json"),
    }
    before = REGISTRY.get_sample_value("learnstream_http_requests_total", {
        "service": "progress", "method": "POST", "route": "/xapi/statements", "status": "200"}) or 0
    for name, (body, headers, content_type) in cases.items():
        answers = {path: client.post("/xapi/statements", data=body, headers=headers, content_type=content_type)
                   for path, client in paths.items()}
        ingest_answer, flask_answer = answers["ingest"], answers["flask"]
        assert ingest_answer.status_code == flask_answer.status_code, name
        assert ingest_answer.status_code < 500, name
        assert sorted(ingest_answer.headers.keys()) == sorted(flask_answer.headers.keys()), name
        for header in ("Content-Type", "X-Experience-API-Version", "Access-Control-Allow-Origin",
                       "Access-Control-Expose-Headers", "WWW-Authenticate"):
            assert ingest_answer.headers.get(header) == flask_answer.headers.get(header), (name, header)
        if ingest_answer.status_code == 200:  # new ids each time; the same number of them
            assert len(orjson.loads(ingest_answer.data)) == len(orjson.loads(flask_answer.data)), name
        else:
            assert ingest_answer.data == flask_answer.data, name
    after = REGISTRY.get_sample_value("learnstream_http_requests_total", {
        "service": "progress", "method": "POST", "route": "/xapi/statements", "status": "200"})
    assert after - before == 6  # three accepted cases, answered by each path: both are counted


def test_an_oversized_chunked_body_is_413_not_a_truncated_400(lrs):
    """A body sent without Content-Length (chunked) is read only up to the limit, and one
    byte more than the limit tells that it is too large: 413, on both paths (the ingest
    path answers statement POSTs; a query string sends them through Flask's view)."""
    import io

    chunked = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}  # as gunicorn gives a chunked body
    huge = b'[{"x": "' + b"a" * (17 * 1024 * 1024) + b'"}]'
    for path in ("/xapi/statements", "/xapi/statements?statementId=" + new_id()):
        method = lrs.client.post if "?" not in path else lrs.client.put
        response = method(path, input_stream=io.BytesIO(huge), headers=lrs.headers(),
                          content_type="application/json", environ_overrides=chunked)
        assert response.status_code == 413, (path, response.status_code, response.data[:200])
    accepted = lrs.client.post("/xapi/statements", input_stream=io.BytesIO(orjson.dumps(statement())),
                               headers=lrs.headers(), content_type="application/json", environ_overrides=chunked)
    assert accepted.status_code == 200, accepted.data
