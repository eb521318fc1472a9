"""Helpers for the LRS tests: an LRS client with credentials of chosen scopes."""
from __future__ import annotations

import base64
import uuid

import orjson

from services.progress.lrs import auth

V1, V2 = "1.0.3", "2.0.0"


class LrsClient:
    """The progress app's test client, speaking xAPI with one credential."""

    def __init__(self, app, scopes=("all",), name="test client"):
        self.app = app
        self.engine = app.config["LEARNSTREAM_ENGINE"]
        self.client = app.test_client()
        self.key, self.secret = auth.create(self.engine, name, list(scopes))
        self.name = name

    def with_scopes(self, *scopes) -> LrsClient:
        other = LrsClient.__new__(LrsClient)
        other.app, other.engine, other.client, other.name = self.app, self.engine, self.app.test_client(), "other"
        other.key, other.secret = auth.create(self.engine, "other", list(scopes))
        return other

    def headers(self, version=V2, **extra) -> dict:
        token = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        if version:
            headers["X-Experience-API-Version"] = version
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def post(self, statements, version=V2, **kw):
        return self.client.post("/xapi/statements", data=orjson.dumps(statements), content_type="application/json",
                                headers=self.headers(version), **kw)

    def put(self, statement, statement_id, version=V2):
        return self.client.put(f"/xapi/statements?statementId={statement_id}", data=orjson.dumps(statement),
                               content_type="application/json", headers=self.headers(version))

    def get(self, path="/xapi/statements", version=V2, query=None, **headers):
        return self.client.get(path, query_string=query, headers=self.headers(version, **headers))

    @property
    def authority(self) -> dict:
        return auth.Client(self.key, self.name, frozenset()).authority


def agent(n=1, **kw) -> dict:
    return {"objectType": "Agent", "name": f"Learner {n}", "mbox": f"mailto:learner{n}@example.org", **kw}


def statement(n=1, verb="http://adlnet.gov/expapi/verbs/experienced", activity="http://example.org/act/1",
              **extra) -> dict:
    built = {
        "actor": agent(n),
        "verb": {"id": verb, "display": {"en-US": "experienced", "fr-FR": "a vécu"}},
        "object": {"objectType": "Activity", "id": activity,
                   "definition": {"name": {"en-US": "Module one", "de-DE": "Modul eins"}}},
    }
    built.update(extra)
    return built


def new_id() -> str:
    return str(uuid.uuid4())
