"""State, activity profile and agent profile documents, concurrency included."""
from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from tests.support.lrs import V1, V2, LrsClient, agent

pytestmark = pytest.mark.integration

ACTIVITY = "http://example.org/act/doc"


@pytest.fixture
def lrs(deployment) -> LrsClient:
    return LrsClient(deployment.app("progress"))


def state_query(state_id="s1", **extra) -> dict:
    return {"activityId": ACTIVITY, "agent": orjson.dumps(agent()).decode(), "stateId": state_id, **extra}


def send(lrs, method, path, query, body=None, version=V2, content_type="application/json", **headers):
    data = orjson.dumps(body) if isinstance(body, (dict, list)) else body
    return lrs.client.open(path, method=method, query_string=query, data=data, content_type=content_type,
                           headers=lrs.headers(version, **headers))


def test_state_put_get_merge_list_delete(lrs):
    path = "/xapi/activities/state"
    assert send(lrs, "PUT", path, state_query(), {"a": 1}).status_code == 204
    got = send(lrs, "GET", path, state_query())
    assert got.json == {"a": 1}
    assert got.headers["ETag"] == f'"{hashlib.sha1(got.data).hexdigest()}"'
    assert send(lrs, "POST", path, state_query(), {"b": 2}).status_code == 204
    assert send(lrs, "GET", path, state_query()).json == {"a": 1, "b": 2}
    assert send(lrs, "POST", path, state_query(), b"[1]").status_code == 400  # only objects merge
    before = time.time()
    assert send(lrs, "PUT", path, state_query("s2"), b"plain text", content_type="text/plain",
                If_None_Match="*").status_code == 204
    listing = send(lrs, "GET", path, {k: v for k, v in state_query().items() if k != "stateId"})
    assert sorted(listing.json) == ["s1", "s2"]
    scope = {k: v for k, v in state_query().items() if k != "stateId"}
    assert sorted(send(lrs, "GET", path, {**scope, "since": "2000-01-01T00:00:00Z"}).json) == ["s1", "s2"]
    assert send(lrs, "GET", path, {**scope, "since": "2999-01-01T00:00:00Z"}).json == []
    assert send(lrs, "GET", path, state_query("s2")).data == b"plain text"
    assert send(lrs, "DELETE", path, state_query("s1")).status_code == 204
    assert send(lrs, "GET", path, state_query("s1")).status_code == 404
    assert send(lrs, "DELETE", path, {k: v for k, v in state_query().items() if k != "stateId"}).status_code == 204
    assert send(lrs, "GET", path, state_query("s2")).status_code == 404
    assert time.time() >= before


def test_registration_scopes_state(lrs):
    path = "/xapi/activities/state"
    reg = "9c1b7a2e-5f4e-4d7a-9b1e-2a3b4c5d6e7f"
    send(lrs, "PUT", path, state_query(registration=reg), {"r": 1})
    assert send(lrs, "GET", path, state_query()).status_code == 404
    assert send(lrs, "GET", path, state_query(registration=reg)).json == {"r": 1}
    assert send(lrs, "GET", path, state_query(registration="nope")).status_code == 400


def test_preconditions(lrs):
    path = "/xapi/activities/profile"
    query = {"activityId": ACTIVITY, "profileId": "p"}
    assert send(lrs, "PUT", path, query, {"v": 1}).status_code == 204  # new document, 2.0
    etag = send(lrs, "GET", path, query).headers["ETag"]
    assert send(lrs, "PUT", path, query, {"v": 2}).status_code == 409  # exists, no precondition
    assert send(lrs, "PUT", path, query, {"v": 2}, If_Match='"nope"').status_code == 412
    assert send(lrs, "PUT", path, query, {"v": 2}, If_None_Match="*").status_code == 412
    assert send(lrs, "PUT", path, query, {"v": 2}, If_Match=etag).status_code == 204
    assert send(lrs, "GET", path, query).json == {"v": 2}
    assert send(lrs, "DELETE", path, query, If_Match=etag).status_code == 412
    # 1.0.3: a profile PUT always states its precondition.
    assert send(lrs, "PUT", path, {**query, "profileId": "q"}, {"v": 1}, version=V1).status_code == 400


def test_agent_profile_and_bad_parameters(lrs):
    path = "/xapi/agents/profile"
    query = {"agent": orjson.dumps(agent()).decode(), "profileId": "prefs"}
    assert send(lrs, "PUT", path, query, {"lang": "fr"}, If_None_Match="*").status_code == 204
    assert send(lrs, "GET", path, query).json == {"lang": "fr"}
    assert send(lrs, "GET", path, {"agent": query["agent"]}).json == ["prefs"]
    assert send(lrs, "GET", path, {**query, "agent": '{"name": "no ifi"}'}).status_code == 400
    assert send(lrs, "GET", path, {**query, "Agent": query["agent"]}).status_code == 400
    assert send(lrs, "GET", "/xapi/activities/state", {"agent": query["agent"]}).status_code == 400
    assert lrs.client.head(path, query_string=query, headers=lrs.headers()).status_code == 200


def test_a_hundred_concurrent_merges_lose_nothing(lrs):
    path = "/xapi/activities/state"
    barrier = threading.Barrier(20)

    def merge(i):
        if i < 20:
            barrier.wait()
        client = lrs.app.test_client()
        return client.post(path, query_string=state_query("shared"), data=orjson.dumps({f"k{i}": i}),
                           content_type="application/json", headers=lrs.headers()).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(merge, range(100)))
    assert statuses == [204] * 100
    merged = send(lrs, "GET", path, state_query("shared")).json
    assert merged == {f"k{i}": i for i in range(100)}


@pytest.mark.parametrize("field", ["stateId", "activityId", "registration"])
def test_a_nul_character_in_a_parameter_is_refused_and_stores_nothing(lrs, field):
    """PostgreSQL text cannot hold a NUL: it must be a 400 naming the parameter, never a 500."""
    path = "/xapi/activities/state"
    query = state_query(**{field: "s\x00t" if field != "activityId" else ACTIVITY + "\x00"})
    response = send(lrs, "PUT", path, query, {"a": 1})
    assert response.status_code == 400 and field in response.json["error"]["message"]
    listing = send(lrs, "GET", path, {k: v for k, v in state_query().items() if k != "stateId"})
    assert listing.status_code == 200 and listing.json == []
    # The same through the 1.0.3 alternate request syntax (parameters in the form body).
    form = {**query, "content": "{}", "X-Experience-API-Version": V1, "Content-Type": "application/json",
            "Authorization": lrs.headers()["Authorization"]}
    alternate = lrs.client.post(f"{path}?method=PUT", data=form)
    assert alternate.status_code == 400 and field in alternate.json["error"]["message"]
