"""The LRS on the web: its routes under /xapi, as a Flask blueprint made for one `Lrs`,
and `StatementIngest`, which answers statement POSTs without Flask.

Every route goes through protocol.answer with the resource's handler. A plain Flask
blueprint, not the services' flask-smorest one: xAPI has its own error rules (always
400 for invalid input), its own credentials and its own content types, so none of the
app-wide machinery applies.
"""
from __future__ import annotations

import time

from flask import Blueprint, Response, request

from services.progress.lrs import protocol
from services.progress.lrs.deps import Lrs
from services.progress.lrs.resources.about import about_resource
from services.progress.lrs.resources.activities import activities_resource, agents_resource
from services.progress.lrs.resources.documents import (
    activity_profile_resource,
    agent_profile_resource,
    state_resource,
)
from services.progress.lrs.resources.statements import statements_resource
from shared.http import observe_request

PREFIX = "/xapi"
# rule -> (handler, protocol.answer's options)
ROUTES = {
    "/statements": (statements_resource, {}),
    "/activities/state": (state_resource, {}),
    "/activities/profile": (activity_profile_resource, {}),
    "/agents/profile": (agent_profile_resource, {}),
    "/activities": (activities_resource, {}),
    "/agents": (agents_resource, {}),
    "/about": (about_resource, {"needs_auth": False, "needs_version": False}),
}


def blueprint(lrs: Lrs) -> Blueprint:
    """The /xapi routes of one app, each answering with `lrs`."""
    bp = Blueprint("lrs", __name__, url_prefix=PREFIX)
    for rule, (handler, options) in ROUTES.items():
        bp.add_url_rule(rule, view_func=_view(lrs, handler, options),
                        methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
    return bp


def _view(lrs: Lrs, handler: protocol.Handler, options: dict):
    def view():
        if request.method == "OPTIONS":
            return protocol.preflight()
        return protocol.answer(lrs, request.environ, handler, **options)
    view.__name__ = handler.__name__
    view.accepts_any_body = True  # xAPI bodies are JSON, multipart, form-encoded or anything (documents)
    return view


class StatementIngest:
    """WSGI middleware: `POST /xapi/statements` (no query string) answered without Flask's
    request context, routing and hooks. It is the request LMSs send most, one statement
    at a time, and Flask's machinery was a fifth of its CPU (docs/performance.md).
    The answer is the one the Flask view gives: the same `protocol.answer` and handler,
    with the same `Lrs`; only the request metrics, which Flask's hooks record for every
    other request, are taken here. Anything else (another method, a query string such as
    the 1.0.3 alternate syntax) goes on to `wsgi_app` (Flask)."""

    PATH = PREFIX + "/statements"

    def __init__(self, lrs: Lrs, wsgi_app, service: str):
        self.lrs, self.wsgi_app, self.service = lrs, wsgi_app, service

    def __call__(self, environ: dict, start_response):
        if (environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != self.PATH
                or environ.get("QUERY_STRING")):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        response: Response = protocol.answer(self.lrs, environ, statements_resource)
        observe_request(self.service, "POST", self.PATH, response.status_code, time.perf_counter() - started)
        return response(environ, start_response)
