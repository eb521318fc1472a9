"""Issue 12's LRS findings, each as it was reproduced: crafted `more` cursors, deep
nesting, voiding across keys, and bulk POSTs (through the Flask app and a real database)."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from services.progress.lrs import cursors
from tests.support.lrs import LrsClient, statement

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
    app = deployment.app("progress")
    app.config["LEARNSTREAM_SETTINGS"] = deployment.settings("progress", lrs_cursor_secret="s3cret")
    lrs = LrsClient(app)
    lrs.post([statement(i) for i in range(3)])
    token = _more(lrs.get(query={"limit": "1"}))
    assert lrs.get(query={"more": token}).status_code == 200
    app.config["LEARNSTREAM_SETTINGS"] = deployment.settings("progress", lrs_cursor_secret="rotated")
    assert lrs.get(query={"more": token}).status_code == 400
