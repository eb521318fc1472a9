"""The Flask app factory every service uses.

It gives each service the same edges: JSON error bodies naming the field and the
problem, /healthz, /readyz, /metrics (Prometheus) and /openapi.json generated from the
marshmallow schemas by flask-smorest.
"""
from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, jsonify, request
from flask_smorest import Api, abort
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from shared import audit, auth, bus, db, i18n, logs
from shared.blueprint import Blueprint  # noqa: F401 (every service's routes import it from here)
from shared.config import Settings
from shared.errors import DomainError
from shared.oidc import TokenVerifier

log = logging.getLogger(__name__)


MAX_BODY_BYTES = 32 * 1024 * 1024
# What a 503 for a database that cannot be reached asks clients to wait: about the time a
# PostgreSQL restart or failover takes to accept connections again.
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "the database cannot be reached or did not answer in time; nothing was changed, retry later"

REQUESTS = Counter("learnstream_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("learnstream_http_request_seconds", "HTTP request latency", ["service", "method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def create_service_app(
    settings: Settings, engine: Engine, *, title: str, description: str,
    blueprints: Iterable[Blueprint], extra_ready_checks: dict[str, Callable[[], bool]] | None = None,
    commands: object | None = None, accounts: sa.Table | None = None, audit_log: sa.Table | None = None,
) -> Flask:
    """A service's Flask app. `commands` is the service's write side (its `commands.py`
    object), which routes reach with `commands()`; the read queries take `engine()`.
    `accounts` is the service's accounts table (shared.auth checks credentials against
    it), `audit_log` its audit trail (shared.audit: recorded and served at /audit)."""
    app = Flask(settings.service)
    app.extensions["commands"] = commands
    app.extensions[auth.EXTENSION] = auth.AccountDirectory(engine, accounts, settings)
    if settings.oidc.enabled:
        app.extensions["learnstream_oidc"] = TokenVerifier(settings.oidc)
    app.config.update(
        LEARNSTREAM_SETTINGS=settings,
        LEARNSTREAM_ENGINE=engine,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": description},
                          "components": {"securitySchemes": {
                              "basicAuth": {"type": "http", "scheme": "basic"},
                              "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}},
    )
    api = Api(app)
    i18n.install(app)
    blueprints = list(blueprints)
    if audit_log is not None:
        blueprints.append(audit.blueprint(audit_log))
    for blueprint in blueprints:
        api.register_blueprint(blueprint)

    _refuse_cut_bodies(app)  # first: the hooks after it may read the body
    _install_error_handlers(app)
    service_blueprints = {blueprint.name for blueprint in blueprints}  # not the LRS: xAPI has its own rules
    _refuse_nul_characters(app, service_blueprints)
    _refuse_undeclared_query(app, service_blueprints)
    _install_metrics(app, settings.service)
    if audit_log is not None:
        audit.install(app, engine, audit_log, service_blueprints)
    _install_probes(app, settings, engine, extra_ready_checks or {})
    return app


def engine() -> Engine:
    """The service's database engine, for the read queries of the request being served."""
    return current_app.config["LEARNSTREAM_ENGINE"]


def commands():
    """The service's write side (create_service_app's `commands`)."""
    return current_app.extensions["commands"]


def whole_body(environ: dict, limit: int) -> bytes:
    """The request's body, read through Werkzeug's bounded stream; RequestEntityTooLarge
    if it is longer than `limit`. A body without Content-Length (chunked) is cut at the
    bound without an error: reading one byte past the limit is how its length is known."""
    body = get_input_stream(environ, max_content_length=limit + 1).read()
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def _refuse_cut_bodies(app: Flask) -> None:
    """A body sent without Content-Length (chunked) and longer than MAX_CONTENT_LENGTH is
    a 413. Werkzeug cuts such a body at the limit without an error: a CSV import would
    have enrolled the first 32 MB of learners and said nothing of the rest."""

    @app.before_request
    def _whole_body_or_413():
        environ = request.environ
        if ("chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
                or not environ.get("wsgi.input_terminated")):
            return  # a Content-Length over the limit is refused by Werkzeug itself
        try:
            body = whole_body(environ, MAX_BODY_BYTES)
        except RequestEntityTooLarge:
            abort(413, message=f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MB")
        # The whole body, read: hand it on as if it had come with its length.
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))


def _install_error_handlers(app: Flask) -> None:
    @app.before_request
    def _json_bodies_only():
        # A body we would not parse is refused up front rather than read as "missing".
        view = app.view_functions.get(request.endpoint)
        if (request.method in ("POST", "PUT", "PATCH") and request.content_length
                and not request.is_json and not getattr(view, "accepts_any_body", False)):
            abort(415, message="send the body as application/json")

    @app.errorhandler(MethodNotAllowed)
    def _method_not_allowed(exc: MethodNotAllowed):
        # flask-smorest's JSON errors drop the exception's headers; RFC 9110 wants Allow.
        allowed = ", ".join(sorted(exc.valid_methods or ()))
        body = {"code": 405, "status": HTTP_STATUS_CODES[405], "message": f"this resource allows {allowed}"}
        return jsonify(body), 405, {"Allow": allowed}

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        body = {"code": exc.status, "status": HTTP_STATUS_CODES[exc.status], "message": exc.message}
        if exc.fields:
            body["errors"] = {"json": exc.fields}
        return jsonify(body), exc.status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # flask-smorest formats these already
            return exc
        if database_unavailable(exc, request.url_rule.rule if request.url_rule else "unmatched"):
            body = {"code": 503, "status": HTTP_STATUS_CODES[503], "message": DATABASE_UNAVAILABLE}
            return jsonify(body), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return jsonify(code=500, status="Internal Server Error", message="internal error"), 500


def database_unavailable(exc: BaseException, route: str) -> bool:
    """Whether `exc` is a database that cannot be reached or answer in time (then the
    request is a 503 with Retry-After, and its transaction was rolled back), logged as
    such: the error's class, not its text (which carries the statement's parameters).
    The one test for it, for the app's handler and the LRS's own error handling."""
    if not db.unavailable(exc):
        return False
    log.warning("database unavailable", extra={"route": route, "reason": logs.described(exc)})
    return True


def _refuse_undeclared_query(app: Flask, blueprint_names: set[str]) -> None:
    """A query parameter on an endpoint that takes none is a 422 naming it, as webargs
    answers for one a query schema does not name (`Blueprint`): `/cohorts/<id>?stat=x`
    must not quietly answer as if nothing had been asked."""

    @app.before_request
    def _no_undeclared_query():
        if request.blueprint not in blueprint_names or not request.args:
            return
        view = app.view_functions.get(request.endpoint)
        if view is not None and not getattr(view, "is_html_page", False) and not _takes_query(view, request.method):
            names = sorted(request.args)
            abort(422, message=f"this endpoint takes no query parameters: {', '.join(map(repr, names))}",
                  errors={"query": {name: ["Unknown field."] for name in names}})


def _takes_query(view, method: str) -> bool:
    """Whether a flask-smorest view (a function, or a MethodView's method) parses query
    arguments (`@blp.arguments(..., location="query")`)."""
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    arguments = (getattr(handler, "_apidoc", None) or {}).get("arguments", {})
    return any(parameter.get("in") == "query" for parameter in arguments.get("parameters", ()))


NUL_MESSAGE = "must not contain NUL (0x00) characters"


def _refuse_nul_characters(app: Flask, blueprint_names: set[str]) -> None:
    """PostgreSQL text cannot hold a NUL character (psycopg raises: a 500) and SQLite
    stores it, so it is refused where the service APIs take text: path, query, JSON.
    A JSON body too deeply nested to parse is refused here too (400)."""

    @app.before_request
    def _no_nul():
        if request.blueprint not in blueprint_names:  # e.g. the LRS, with its own rules
            return
        for location, values in (("path", (request.view_args or {}).items()),
                                 ("query", request.args.items(multi=True))):
            for name, value in values:
                if "\0" in name or (isinstance(value, str) and "\0" in value):
                    abort(422, message=f"{name!r} {NUL_MESSAGE}", errors={location: {name: [NUL_MESSAGE]}})
        if request.is_json and request.content_length:
            try:
                body = request.get_json(silent=True)  # parsed once; the views' schemas reuse it
            except RecursionError:  # json raises this, not ValueError, for arrays nested ~1000 deep
                abort(400, message="the JSON body is nested too deeply", errors={"json": ["Invalid JSON body."]})
            where = _nul_in(body)
            if where is not None:
                abort(422, message=f"{where} {NUL_MESSAGE}", errors={"json": {where or "_schema": [NUL_MESSAGE]}})


def _nul_in(body) -> str | None:
    """Where a NUL in a JSON value is (`name`, `questions[0].text`), or None.
    Iterative: the body may be nested as deep as the JSON parser allows."""
    pending = [("", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if "\0" in value:
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if "\0" in key:
                    return where
                pending.append((where, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def uploaded_csv(accepted: str = "text/csv or multipart/form-data") -> str:
    """The CSV a request carries, as text: the body (text/csv) or a form's `file` field.

    Excel's UTF-8 byte-order mark is dropped; anything but UTF-8 is refused with the
    offset of the first bad byte, rather than guessed at.
    """
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise DomainError("send the CSV as the 'file' field of the form", "file")
        raw = upload.read()
    elif request.mimetype in ("text/csv", "text/plain", "application/csv"):
        raw = request.get_data()
    else:
        abort(415, message=f"send the body as {accepted}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DomainError(f"the CSV is not UTF-8 (byte {exc.start})", "file") from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise DomainError(f"the CSV has a NUL (0x00) character at line {line}", "file")
    return text


def attachment(filename: str) -> str:
    """The Content-Disposition of a download named `filename`, whatever the name holds.

    Names carry ids from the path: a control character or newline there is an invalid
    header (gunicorn answers 500, Werkzeug raises), a quote ends the name early. The
    plain `filename` keeps printable ASCII only; the exact name goes in `filename*`.
    """
    plain = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename)
    header = f'attachment; filename="{plain}"'
    if plain != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def html_page(view):
    """Mark a view that serves an HTML page: its query string belongs to the page's own
    script (the dashboard's `?refresh=`) or to whoever linked it, not to the server."""
    view.is_html_page = True
    return view


def accepts_any_body(view):
    """Mark a view that reads a non-JSON body itself (CSV uploads)."""
    view.accepts_any_body = True
    return view


def observe_request(service: str, method: str, route: str, status: int, seconds: float | None) -> None:
    """Count one answered request and its latency, if timed. `route` is the rule, never
    the path: paths carry ids (personal data, and a label value per learner)."""
    if seconds is not None:
        LATENCY.labels(service, method, route).observe(seconds)
    REQUESTS.labels(service, method, route, str(status)).inc()


def _install_metrics(app: Flask, service: str) -> None:
    @app.before_request
    def _start_timer():
        g._started = time.perf_counter()

    @app.after_request
    def _observe(response: Response):
        started = g.pop("_started", None)  # None: an earlier hook refused the request
        route = request.url_rule.rule if request.url_rule else "unmatched"
        observe_request(service, request.method, route, response.status_code,
                        None if started is None else time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics():
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _install_probes(app: Flask, settings: Settings, engine: Engine, extra: dict[str, Callable[[], bool]]) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=settings.service)

    @app.get("/readyz")
    def readyz():
        checks = {"database": _database_ok(engine), "broker": bus.broker_reachable(settings)}
        checks.update({name: check() for name, check in extra.items()})
        missing = [name for name, ok in checks.items() if not ok]
        if not missing:
            return jsonify(status="ready", checks=checks)
        return jsonify(status="not ready", checks=checks, missing=missing,
                       message=f"cannot reach: {', '.join(missing)}"), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _database_ok(engine: Engine) -> bool:
    try:
        with db.reading(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception as exc:
        log.warning("database not reachable", extra={"reason": logs.described(exc)})
        return False
