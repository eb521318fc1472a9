"""Issue 12's LRS findings, each as it was reproduced: crafted `more` cursors, deep
nesting, voiding across keys, and bulk POSTs (through the Flask app and a real database)."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from services.progress.lrs import cursors
from shared import xapi
from tests.support.flows import read_topic
from tests.support.lrs import V1, V2, LrsClient, agent, new_id, statement

pytestmark = pytest.mark.integration


@pytest.fixture
def lrs(deployment) -> LrsClient:
    return LrsClient(deployment.app("progress"))


def _more(response) -> str:
    return parse_qs(urlparse(response.json["more"]).query)["more"][0]


def _b64(value) -> str:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# The campaign's crafted cursors: JSON of the wrong shape, positions of the wrong type,
# and well-formed positions nobody signed.
CRAFTED = [_b64(v) for v in (
    [1], 1, None, "x", True, {}, {"p": 1}, {"p": [1]}, {"p": {"limit": 1}}, {"p": {}, "c": 1},
    {"p": {}, "c": "x"}, {"p": {}, "c": {"stored": 1, "seq": 1}}, {"p": {}, "c": {"stored": "nope", "seq": 1}},
    {"p": {}, "c": {"stored": "2026-11-23T00:00:00+00:00", "seq": "1"}},
    {"p": {}, "c": {"stored": "2026-11-23T00:00:00+00:00", "seq": 1}})] + ["!!not base64!!", "", "a.b"]


@pytest.mark.parametrize("token", CRAFTED)
def test_a_cursor_the_lrs_did_not_make_is_a_400(lrs, token):
    lrs.post([statement(i) for i in range(3)])
    response = lrs.get(query={"more": token})
    assert response.status_code == 400, (response.status_code, response.data[:300])
    assert "more" in response.json["error"]["message"]


def test_a_cursor_pages_for_its_own_credential_only_and_cannot_be_altered(lrs, deployment):
    posted = lrs.post([statement(i) for i in range(5)]).json
    first = lrs.get(query={"limit": "2"})
    token = _more(first)
    # Genuine: pages on, with the first query's parameters.
    second = lrs.get(query={"more": token})
    assert second.status_code == 200 and len(second.json["statements"]) == 2
    seen = [s["id"] for s in first.json["statements"] + second.json["statements"]]
    third = lrs.get(query={"more": _more(second)})
    seen += [s["id"] for s in third.json["statements"]]
    assert sorted(seen) == sorted(posted) and not third.json["more"]
    # Tampered: the query's parameters changed (a bigger page), the signature kept.
    body, signature = token.split(".")
    changed = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    changed["p"]["limit"] = "500"
    assert lrs.get(query={"more": f"{_b64(changed)}.{signature}"}).status_code == 400
    assert lrs.get(query={"more": token[:-2] + ("AA" if not token.endswith("AA") else "BB")}).status_code == 400
    # Another credential's token: refused, even for a key that may read everything.
    other = lrs.with_scopes("all")
    refused = other.get(query={"more": token})
    assert refused.status_code == 400 and "credential" in refused.json["error"]["message"]
    # Another process (a second gunicorn worker, or after a restart) accepts it: the key
    # is the database's, not the process's.
    cursors._keys.clear()
    again = LrsClient.__new__(LrsClient)
    again.__dict__.update(lrs.__dict__, app=deployment.app("progress"))
    again.client = again.app.test_client()
    assert again.get(query={"more": token}).json["statements"] == second.json["statements"]


def test_a_configured_cursor_secret_signs_instead(deployment):
    from services.progress.app import create_app

    # The LRS is given its secret when the app is made (services.progress.lrs.deps), so a
    # rotated secret is another app on the same database, asked with the same credential.
    lrs = LrsClient(create_app(deployment.settings("progress", lrs_cursor_secret="s3cret")))
    lrs.post([statement(i) for i in range(3)])
    token = _more(lrs.get(query={"limit": "1"}))
    assert lrs.get(query={"more": token}).status_code == 200
    lrs.client = create_app(deployment.settings("progress", lrs_cursor_secret="rotated")).test_client()
    assert lrs.get(query={"more": token}).status_code == 400


def test_an_empty_array_stores_nothing_and_is_no_500(lrs):
    """Found by schemathesis: POST [] reached the database as an empty INSERT."""
    answer = lrs.post([])
    assert answer.status_code == 200 and answer.json == []
    assert lrs.get().json["statements"] == []


# --- deep nesting (shared.xapi.MAX_DEPTH) ----------------------------------------------

def deep_statement(n: int, depth: int) -> bytes:
    """A statement `depth` levels deep, all of it in one result extension: the statement
    (1), result (2), extensions (3), then the extension's value. As JSON text: orjson
    itself cannot write what is too deep."""
    levels = depth - 3
    shallow = orjson.dumps(statement(n, result={"extensions": {"http://example.org/ext/deep": "HERE"}}))
    raw = shallow.replace(b'"HERE"', b'{"a":' * levels + b'"bottom"' + b"}" * levels)
    parsed = orjson.loads(raw)
    assert not xapi.too_deep(parsed, depth) and xapi.too_deep(parsed, depth - 1)
    return raw


def _post(lrs, raw: bytes, version=V2):
    return lrs.client.post("/xapi/statements", data=raw, content_type="application/json",
                           headers=lrs.headers(version))


def _put(lrs, raw: bytes, statement_id: str):
    return lrs.client.put(f"/xapi/statements?statementId={statement_id}", data=raw,
                          content_type="application/json", headers=lrs.headers())


def test_a_statement_at_the_depth_limit_is_stored_and_round_trips(lrs, deployment, kafka_bootstrap):
    limit = xapi.MAX_DEPTH
    one = _post(lrs, deep_statement(1, limit))
    assert one.status_code == 200, one.json
    batch = _post(lrs, b"[" + deep_statement(2, limit) + b"," + deep_statement(3, limit) + b"]", V1)
    assert batch.status_code == 200, batch.json
    put_id = new_id()
    assert _put(lrs, deep_statement(4, limit), put_id).status_code == 204
    ids = one.json + batch.json + [put_id]
    for sid in ids:
        got = lrs.get(query={"statementId": sid})
        assert got.status_code == 200 and not xapi.too_deep(got.json, limit) and xapi.too_deep(got.json, limit - 1)
    for fmt in ("exact", "canonical", "ids"):  # a page wraps each statement two levels deeper
        page = lrs.get(query={"format": fmt})
        assert page.status_code == 200 and sorted(s["id"] for s in page.json["statements"]) == sorted(ids)
    assert lrs.get(query={"attachments": "true"}).status_code == 200
    # Published, and what the consumers parse is the statement as stored.
    deployment.start_worker("progress")
    records = read_topic(kafka_bootstrap, deployment.settings("progress").topic("lrs"), expected=4)
    assert sorted(xapi.decode(r.value)["id"] for r in records) == sorted(ids)


@pytest.mark.parametrize("depth", [xapi.MAX_DEPTH + 1, 300, 500])
def test_a_statement_deeper_than_the_limit_is_a_400_and_nothing_is_stored(lrs, depth):
    too_deep = deep_statement(1, depth)
    answers = {
        "POST one": _post(lrs, too_deep),
        "POST batch": _post(lrs, b"[" + orjson.dumps(statement(2)) + b"," + too_deep + b"]"),
        "PUT": _put(lrs, deep_statement(3, depth), new_id()),
        "POST 1.0.3": _post(lrs, too_deep, V1),
    }
    for name, answer in answers.items():
        assert answer.status_code == 400, (name, answer.status_code, answer.data[:200])
        assert "deep" in answer.json["error"]["message"], name
    assert lrs.get().json["statements"] == []


def test_a_document_too_deep_to_merge_is_a_400(lrs):
    path = "/xapi/activities/state"
    query = {"activityId": "http://example.org/act/doc", "agent": orjson.dumps(agent()).decode(), "stateId": "s"}

    def send(method, body: bytes, **headers):
        return lrs.client.open(path, method=method, query_string=query, data=body,
                               content_type="application/json", headers=lrs.headers(**headers))

    def nested(levels: int) -> bytes:  # {"k": {"a": ... levels - 1 deep}}: `levels` deep in all
        return b'{"k":' + b'{"a":' * (levels - 1) + b"1" + b"}" * levels
    assert send("POST", nested(xapi.MAX_DEPTH)).status_code == 204
    assert send("POST", nested(xapi.MAX_DEPTH + 1)).status_code == 400
    assert send("PUT", nested(400), If_Match="*").status_code == 204  # stored as sent, never parsed
    merge = send("POST", b'{"d": 1}')
    assert merge.status_code == 400 and "stored document" in merge.json["error"]["message"]


# --- voiding across keys -----------------------------------------------------------------

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"


def voiding(target: str, n: int = 1) -> dict:
    return {"actor": agent(n), "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": target}}


def _outbox_rows(lrs) -> int:
    import sqlalchemy as sa

    from services.progress.tables import outbox
    from shared import db
    with db.reading(lrs.engine) as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(outbox))


def test_a_key_voids_only_its_own_statements_unless_its_scope_says_any(lrs):
    player = lrs.with_scopes("statements/write", "statements/read/mine")
    completion = player.post(statement(1, verb=COMPLETED)).json[0]
    other_module = player.post(statement(1, verb=COMPLETED, activity="http://example.org/act/2")).json[0]
    writer = lrs.with_scopes("statements/write")
    own = writer.post(statement(2)).json[0]
    published = _outbox_rows(lrs)

    refused = writer.post(voiding(completion))
    assert refused.status_code == 403
    assert "another credential" in refused.json["error"]["message"]
    assert "learner" not in refused.json["error"]["message"]  # names the statement, not the learner
    # In a batch, nothing of it is stored: neither the voiding nor the innocent statement.
    innocent = {**statement(3), "id": new_id()}
    assert writer.post([innocent, voiding(completion)]).status_code == 403
    assert lrs.put(voiding(completion), new_id()).status_code == 204  # (an `all` key: allowed, below)
    assert lrs.get(query={"voidedStatementId": completion}).status_code == 200
    assert lrs.get(query={"statementId": innocent["id"]}).status_code == 404
    assert _outbox_rows(lrs) == published + 1  # only the `all` key's voiding statement
    # The same statement sent again (accepted as the same) does not make it the sender's.
    again = lrs.get(query={"statementId": other_module}).json
    resent = {k: again[k] for k in ("id", "actor", "verb", "object", "timestamp")}
    assert writer.post([resent, voiding(other_module)]).status_code == 403
    assert lrs.get(query={"statementId": other_module}).status_code == 200
    # Its own: allowed; and a target in the same request is its own.
    assert writer.post(voiding(own)).status_code == 200
    fresh = {**statement(4), "id": new_id()}
    assert writer.post([fresh, voiding(fresh["id"])]).status_code == 200
    assert lrs.get(query={"voidedStatementId": fresh["id"]}).status_code == 200
    # statements/void/any voids another key's statement.
    steward = lrs.with_scopes("statements/write", "statements/void/any")
    assert steward.post(voiding(other_module)).status_code == 200
    assert lrs.get(query={"voidedStatementId": other_module}).status_code == 200


def test_the_services_statements_cannot_be_voided_through_the_lrs(lrs):
    """As the worker stores them from enrollment.v1 (their authority is the service's)."""
    from services.progress.lrs.projection import store_from_bus
    from shared import xapi

    registered = xapi.statement(agent(1), xapi.REGISTERED, xapi.activity("https://learnstream.dev/programmes/p"),
                                authority=xapi.service_agent("enrollment"))
    with lrs.engine.begin() as conn:
        store_from_bus(conn, [registered])
    for key in (lrs, lrs.with_scopes("statements/write", "statements/void/any")):  # `all` included
        refused = key.post(voiding(registered["id"]))
        assert refused.status_code == 403 and "learnstream service" in refused.json["error"]["message"]
        assert key.post([statement(5), voiding(registered["id"])], V1).status_code == 403
    assert lrs.get(query={"statementId": registered["id"]}).status_code == 200
    assert lrs.get(query={"agent": orjson.dumps(agent(5)).decode()}).json["statements"] == []


# --- bulk requests: bounded transactions ------------------------------------------------

@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 10 (instead of 1,000), so that a bulk request is a few dozen statements."""
    from services.progress.lrs import store as st

    monkeypatch.setattr(st, "CHUNK", 10)
    return st


def _count_commits(engine) -> list:
    import sqlalchemy as sa

    commits: list = []
    sa.event.listen(engine, "commit", lambda conn: commits.append(1))
    return commits


def test_a_bulk_request_commits_in_chunks_and_answers_once_all_are_in(lrs):
    from services.progress.lrs.store import CHUNK

    sent = [{**statement(i), "id": new_id()} for i in range(2 * CHUNK + 500)]
    commits = _count_commits(lrs.engine)
    answer = lrs.post(sent)
    assert answer.status_code == 200 and answer.json == [s["id"] for s in sent]
    assert len(commits) == 3  # 1,000 + 1,000 + 500, each its own transaction (was one of 2,500)
    assert _outbox_rows(lrs) == len(sent)
    stored, page = [], lrs.get(query={"limit": "500"})
    while True:
        stored += [s["id"] for s in page.json["statements"]]
        if not page.json["more"]:
            break
        page = lrs.get(query={"more": _more(page)})
    assert sorted(stored) == sorted(s["id"] for s in sent)
    # A request of CHUNK statements or fewer still goes through the group commit, in one.
    commits.clear()
    assert lrs.post([statement(i) for i in range(CHUNK)]).status_code == 200 and len(commits) == 1


@pytest.mark.parametrize("problem", ["invalid", "conflict", "void"])
def test_a_bulk_request_refused_for_its_last_statement_stores_nothing(lrs, small_chunks, problem):
    taken = lrs.with_scopes("statements/write").post({**statement(99), "id": new_id()})
    taken_id = taken.json[0]
    sent = [{**statement(i), "id": new_id()} for i in range(25)]
    if problem == "invalid":
        sent[-1]["verb"] = {"id": "not an iri"}
    elif problem == "conflict":
        sent[-1] = {**statement(98), "id": taken_id}  # the id stored, other content
    else:
        sent[-1] = voiding(taken_id)
    writer = lrs.with_scopes("statements/write")
    answer = writer.post(sent)
    assert answer.status_code == {"invalid": 400, "conflict": 409, "void": 403}[problem], answer.json
    assert [s["id"] for s in lrs.get(query={"limit": "100"}).json["statements"]] == [taken_id]


def test_a_bulk_request_cut_short_midway_is_safe_to_send_again(lrs, small_chunks, monkeypatch):
    """What the chunks leave possible: a failure after the first chunk committed. The
    same request sent again stores the rest, and nothing twice (its statements carry ids)."""
    sent = [{**statement(i), "id": new_id()} for i in range(25)]
    real_store, calls = small_chunks.store, []

    def store_then_fail(conn, batch, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real_store(conn, batch, **kwargs)
    monkeypatch.setattr(small_chunks, "store", store_then_fail)
    assert lrs.post(sent).status_code != 200
    assert len(lrs.get(query={"limit": "100"}).json["statements"]) == 10
    monkeypatch.setattr(small_chunks, "store", real_store)
    assert lrs.post(sent).status_code == 200
    stored = lrs.get(query={"limit": "100"}).json["statements"]
    assert sorted(s["id"] for s in stored) == sorted(s["id"] for s in sent)
    assert _outbox_rows(lrs) == 25
