"""The xAPI LRS HTTP interface under /xapi (1.0.3 and 2.0.0, per request).

A plain Flask blueprint: xAPI has its own error rules (always 400 for invalid input),
its own credentials and its own content types, so none of the app-wide flask-smorest
machinery applies. Each view turns the HTTP request (or a 1.0.3 alternate-syntax POST)
into an `XRequest` and hands it to one handler per resource.
"""
from __future__ import annotations

import base64
import binascii
import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.datastructures import EnvironHeaders, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import http_date, parse_accept_header

from services.progress.lrs import attachments as att
from services.progress.lrs import auth, cursors, documents, signatures, validation
from services.progress.lrs import statements as st
from services.progress.lrs.documents import Scope
from services.progress.lrs.validation import V1, V2, Invalid
from shared import db, xapi
from shared.blocking import cooperate
from shared.group_commit import GroupCommitter
from shared.http import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    database_unavailable,
    observe_request,
    whole_body,
)

log = logging.getLogger(__name__)

bp = Blueprint("lrs", __name__, url_prefix="/xapi")


@bp.record_once
def _statement_writer(state) -> None:
    """One group committer per app: POSTed statements of concurrent requests share a commit."""
    from services.progress.tables import outbox
    settings = state.app.config["LEARNSTREAM_SETTINGS"]
    write = functools.partial(st.store_requests, lrs_outbox=outbox, topic=settings.topic("lrs"))
    state.app.extensions["lrs_writer"] = GroupCommitter(
        state.app.config["LEARNSTREAM_ENGINE"], write, name="lrs",
        size=lambda job: len(job[0].rows), max_size=st.CHUNK)

MAX_BODY = 16 * 1024 * 1024
ALT_HEADERS = {"authorization", "x-experience-api-version", "content-type", "content-length", "if-match",
               "if-none-match"}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Experience-API-Version, If-Match, "
                                    "If-None-Match, Accept-Language, X-Requested-With",
    "Access-Control-Expose-Headers": "ETag, Last-Modified, Content-Type, X-Experience-API-Version, "
                                     "X-Experience-API-Consistent-Through",
}


class XError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class XRequest:
    method: str
    params: dict[str, str]
    headers: Headers | EnvironHeaders
    body: bytes
    content_type: str
    version: str = V1
    client: auth.Client | None = None
    alternate: bool = False

    def param(self, name: str, required: bool = False) -> str | None:
        value = self.params.get(name)
        if required and value is None:
            raise Invalid(f"the {name} parameter is required")
        return value


def _engine():
    return current_app.config["LEARNSTREAM_ENGINE"]


def _settings():
    return current_app.config["LEARNSTREAM_SETTINGS"]


def _cursor_key() -> bytes:
    return cursors.signing_key(_engine(), _settings().lrs_cursor_secret)


def _json_response(value, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(value), status=status, mimetype="application/json", headers=headers)


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return _json_response({"error": {"code": status, "message": message}}, status, headers)


# --- the pipeline every resource shares ----------------------------------------------

def _build_request(environ: dict) -> XRequest:
    """The XRequest of a WSGI request: the Flask views and the ingest path share it."""
    try:
        query = environ.get("QUERY_STRING", "").encode("latin-1").decode()
    except UnicodeError:
        raise Invalid("the query string is not UTF-8") from None
    params = {}
    # As Werkzeug's request.args: blank values kept, undecodable escapes left encoded.
    for key, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
        if key in params:
            raise Invalid(f"parameter {key} given more than once")
        if "\x00" in key or "\x00" in value:  # no identifier may hold one (nor can PostgreSQL text)
            raise Invalid(f"parameter {key!r} contains a NUL character")
        params[key] = value
    try:
        body = whole_body(environ, MAX_BODY)
    except RequestEntityTooLarge:
        raise XError(413, "request body too large") from None
    headers = EnvironHeaders(environ)  # read-only: the alternate syntax builds a copy to change
    xr = XRequest(environ["REQUEST_METHOD"], params, headers, body, headers.get("Content-Type", ""))
    if "method" in params:
        _alternate(xr)
    return xr


def _alternate(xr: XRequest) -> None:
    """1.0.3 alternate request syntax: POST ?method=X with a form of params and headers."""
    version = xr.headers.get("X-Experience-API-Version", "")
    if xr.method != "POST" or version.startswith("2.") or set(xr.params) != {"method"}:
        raise Invalid("alternate request syntax: POST with only the method parameter (xAPI 1.0.3 only)")
    method = xr.params["method"].upper()
    if method not in ("GET", "PUT", "POST", "DELETE", "HEAD"):
        raise Invalid("alternate request syntax: unknown method")
    if not xr.content_type.lower().startswith("application/x-www-form-urlencoded"):
        raise Invalid("alternate request syntax needs an application/x-www-form-urlencoded body")
    try:
        form = parse_qsl(xr.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(xr.body))
    except (UnicodeDecodeError, ValueError):
        raise Invalid("alternate request syntax: the body is not url-encoded") from None
    params, headers, content = {}, Headers(xr.headers), b""
    headers.remove("Content-Type")
    for key, value in form:
        if key != "content" and ("\x00" in key or "\x00" in value):
            raise Invalid(f"parameter {key!r} contains a NUL character")
        if key.lower() in ALT_HEADERS:
            headers[key] = value
        elif key == "content":
            content = value.encode()
        else:
            params[key] = value
    xr.method, xr.params, xr.headers, xr.body = method, params, headers, content
    xr.content_type = headers.get("Content-Type", "application/json" if content else "")
    xr.alternate = True


def _version(xr: XRequest) -> None:
    header = xr.headers.get("X-Experience-API-Version")
    if header is None:
        raise Invalid("the X-Experience-API-Version header is required")
    if header == "2.0.0" or (header.startswith("2.0") and validation._VERSION.match(header)):
        xr.version = V2
    elif validation._VERSION.match(header) and header.startswith("1.0"):
        xr.version = V1
    else:
        raise Invalid(f"unsupported xAPI version {header!r}")
    if xr.alternate and xr.version == V2:
        raise Invalid("the alternate request syntax is not part of xAPI 2.0")


def _authenticate(xr: XRequest) -> None:
    header = xr.headers.get("Authorization", "")
    challenge = {"WWW-Authenticate": 'Basic realm="learnstream xAPI"'}
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise XError(401, "credentials required (HTTP Basic: LRS key and secret)", challenge)
    try:
        key, _, secret = base64.b64decode(token.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise XError(401, "malformed credentials", challenge) from None
    client = auth.authenticate(_engine(), key, secret)
    if client is None:
        raise XError(401, "unknown key or wrong secret", challenge)
    xr.client = client


def _require(xr: XRequest, action: str) -> None:
    if not xr.client.may(action):
        raise XError(403, f"this credential lacks the {action} scope")


def _allowed(xr: XRequest, allowed: set[str], required: tuple[str, ...] = ()) -> None:
    for key in xr.params:
        if key not in allowed:
            raise Invalid(f"unknown parameter {key!r}")
    for key in required:
        if key not in xr.params:
            raise Invalid(f"the {key} parameter is required")


# The version each credential last spoke, per process: the version a response names
# when its request named none (or an unknown one) and was refused for it.
_last_version: dict[str, str] = {}


def _answer(environ: dict, handler, *, needs_auth: bool = True, needs_version: bool = True) -> Response:
    """Everything xAPI asks of every resource: credentials, the version header, errors as
    JSON with xAPI's status codes, CORS and the version and consistency headers."""
    answer_v2 = False  # the version the response names
    try:
        xr = _build_request(environ)
        if needs_auth:
            _authenticate(xr)
        if needs_version or "X-Experience-API-Version" in xr.headers:
            try:
                _version(xr)
            except Invalid:
                if xr.client is not None:
                    answer_v2 = _last_version.get(xr.client.key, V2) == V2
                raise
            answer_v2 = xr.version == V2
            if xr.client is not None:
                _last_version[xr.client.key] = xr.version
        response = handler(xr)
    except Invalid as exc:
        response = _error(400, str(exc))
    except XError as exc:
        response = _error(exc.status, exc.message, exc.headers)
    except st.Conflict as exc:
        response = _error(409, str(exc))
    except st.Forbidden as exc:
        response = _error(403, str(exc))
    except documents.PreconditionFailed as exc:
        response = _error(412, str(exc))
    except documents.PreconditionRequired as exc:
        response = _error(409, str(exc))
    except Exception as exc:
        if database_unavailable(exc, environ.get("PATH_INFO", "")):
            response = _error(503, DATABASE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        else:
            # xAPI clients get an answer, never a stack trace; the log has the details.
            log.exception("LRS request failed", extra={"path": environ.get("PATH_INFO"),
                                                       "method": environ["REQUEST_METHOD"]})
            response = _error(500, "internal error")
    response.headers.update(CORS_HEADERS)
    if environ.get("PATH_INFO", "").endswith("/statements") and \
            "X-Experience-API-Consistent-Through" not in response.headers:
        # On every statement response, errors included (xAPI 2.1.3.s2.b5): all committed.
        response.headers["X-Experience-API-Consistent-Through"] = xapi.format_timestamp(xapi.utc_now())
    response.headers["X-Experience-API-Version"] = V2 if answer_v2 else V1
    return response


def _view(rule: str, handler, **options):
    def view():
        if request.method == "OPTIONS":  # a browser's CORS preflight: no credentials, no version
            return Response(status=200, headers=CORS_HEADERS)
        return _answer(request.environ, handler, **options)
    view.__name__ = handler.__name__
    view.accepts_any_body = True  # xAPI bodies are JSON, multipart, form-encoded or anything (documents)
    bp.add_url_rule(rule, view_func=view, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])


class StatementIngest:
    """WSGI middleware: `POST /xapi/statements` (no query string) answered without Flask's
    request context, routing and hooks. It is the request LMSs send most, one statement
    at a time, and Flask's machinery was a fifth of its CPU (README, LRS performance).
    The answer is the one the Flask view gives: the same `_answer` and handler; only the
    request metrics, which Flask's hooks record for every other request, are taken here.
    Anything else (another method, a query string such as the 1.0.3 alternate syntax)
    goes on to Flask."""

    PATH = "/xapi/statements"

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app
        self.service = app.config["LEARNSTREAM_SETTINGS"].service

    def __call__(self, environ: dict, start_response):
        if (environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != self.PATH
                or environ.get("QUERY_STRING")):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        with self.app.app_context():  # the handlers find the engine and writer on current_app
            response = _answer(environ, statements_resource)
        observe_request(self.service, "POST", self.PATH, response.status_code, time.perf_counter() - started)
        return response(environ, start_response)


# --- parsing helpers ----------------------------------------------------------------

def _json(body: bytes, what: str):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid(f"{what} is not valid JSON") from None


def _agent_param(xr: XRequest, name: str = "agent", required: bool = True) -> dict | None:
    raw = xr.param(name, required)
    if raw is None:
        return None
    agent = _json(raw.encode(), name)
    validation.actor(agent, name, xr.version)
    return agent


def _bool_param(xr: XRequest, name: str) -> bool:
    raw = xr.param(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise Invalid(f"{name} must be true or false")
    return raw.lower() == "true"


def _timestamp_param(xr: XRequest, name: str) -> datetime | None:
    raw = xr.param(name)
    return None if raw is None else validation.parse_timestamp(raw, name)


def _etags(xr: XRequest, header: str) -> list[str] | None:
    raw = xr.headers.get(header)
    if raw is None:
        return None
    return [tag.strip().removeprefix("W/").strip('"') for tag in raw.split(",")]


def _languages(xr: XRequest) -> list[str]:
    raw = xr.headers.get("Accept-Language")
    if not raw:
        return []
    return [lang for lang, _ in parse_accept_header(raw)]


# --- statements ---------------------------------------------------------------------

STATEMENT_GET_PARAMS = {"statementId", "voidedStatementId", "agent", "verb", "activity", "registration",
                        "related_activities", "related_agents", "since", "until", "limit", "format",
                        "attachments", "ascending", "more"}


def statements_resource(xr: XRequest) -> Response:
    if xr.method in ("GET", "HEAD"):
        _require(xr, "statements/read")
        return _get_statements(xr)
    if xr.method == "PUT":
        _require(xr, "statements/write")
        _allowed(xr, {"statementId"}, ("statementId",))
        if not validation.is_uuid(xr.params["statementId"]):
            raise Invalid("statementId must be a UUID")
        return _post_statements(xr, put_id=xr.params["statementId"].lower())
    if xr.method == "POST":
        _require(xr, "statements/write")
        _allowed(xr, set())
        return _post_statements(xr, put_id=None)
    raise XError(405, "method not allowed on /statements")


def _parse_statement_body(xr: XRequest) -> tuple[object, dict[str, tuple[str, bytes]]]:
    ctype = xr.content_type.split(";")[0].strip().lower()
    if ctype == "multipart/mixed":
        body, parts = att.parse_multipart(xr.content_type, xr.body)
        return _json(body, "the statement part"), parts
    if ctype != "application/json" and not (xr.alternate and ctype in ("", "application/json")):
        raise Invalid("statements are sent as application/json or multipart/mixed")
    if not xr.body:
        raise Invalid("no statement in the request body")
    return _json(xr.body, "the request body"), {}


def _post_statements(xr: XRequest, put_id: str | None) -> Response:
    payload, parts = _parse_statement_body(xr)
    if put_id is not None:
        if not isinstance(payload, dict):
            raise Invalid("PUT takes one statement")
        if "id" in payload and str(payload["id"]).lower() != put_id:
            raise Invalid("the statement id differs from the statementId parameter")
        payload["id"] = payload.get("id", put_id)
        batch = [payload]
    else:
        batch = payload if isinstance(payload, list) else [payload]
    client, topic = xr.client, _settings().topic("lrs")
    if not batch:  # an empty array: nothing to store (an empty INSERT was a 500, found by fuzzing)
        att.check_parts(batch, parts)
        return _json_response([])
    if len(batch) <= st.CHUNK:
        rows = _prepared(batch, parts, xr.version, client, topic)
        # Committed together with whatever other requests this process is writing now.
        ids = current_app.extensions["lrs_writer"].submit((rows, parts))
    else:
        # A bulk request: its seconds of CPU in slices with the event loop serving other
        # clients in between, and its statements in transactions of CHUNK
        # (statements.store_in_chunks says why).
        from services.progress.tables import outbox
        rows = _prepared(batch, parts, xr.version, client, topic, pause=cooperate)
        ids = st.store_in_chunks(_engine(), rows, parts, lrs_outbox=outbox, topic=topic)
    if put_id is not None:
        return Response(status=204)
    return _json_response(ids)


def _prepared(batch: list[dict], parts: dict, version: str, client: auth.Client, topic: str,
              pause=None) -> st.Batch:
    """The request's statements checked and turned into rows, or Invalid; `pause()`
    between slices of the work, if given."""
    for i, statement in enumerate(st.paced(batch, pause)):
        path = f"statement[{i}]" if len(batch) > 1 else "statement"
        if xapi.too_deep(statement):  # before anything else looks at it (shared.xapi.MAX_DEPTH)
            raise Invalid(f"{path}: nests more than {xapi.MAX_DEPTH} objects or arrays deep")
        validation.statement(statement, version, path)
    att.check_parts(batch, parts)
    signatures.verify_all(batch, parts)
    now = xapi.utc_now()
    authority = client.authority
    for statement in st.paced(batch, pause):  # prepare sets the authority from the credentials (xAPI 2.4.9)
        st.prepare(statement, authority=authority, version=version, stored=now)
    void_right = st.VoidRight(st.agent_key(authority), client.may_void_any)
    return st.rows_for(batch, topic=topic, void_right=void_right, pause=pause)


def _get_statements(xr: XRequest) -> Response:
    _allowed(xr, STATEMENT_GET_PARAMS)
    fmt = xr.param("format") or "exact"
    if fmt not in ("exact", "ids", "canonical"):
        raise Invalid("format must be exact, ids or canonical")
    with_attachments = _bool_param(xr, "attachments")
    languages = _languages(xr)
    consistent = xapi.format_timestamp(xapi.utc_now())
    single = [k for k in ("statementId", "voidedStatementId") if k in xr.params]
    if single:
        if len(single) > 1 or set(xr.params) - {"statementId", "voidedStatementId", "format", "attachments"}:
            raise Invalid("statementId/voidedStatementId take no other parameters but format and attachments")
        wanted = xr.params[single[0]]
        if not validation.is_uuid(wanted):
            raise Invalid(f"{single[0]} must be a UUID")
        with db.reading(_engine()) as conn:
            found = st.get_one(conn, wanted, voided=single[0] == "voidedStatementId")
            if found is None:
                raise XError(404, "no such statement")
            statement, stored = found
            _check_mine(xr, [statement])
            files = st.load_attachments(conn, st.attachment_hashes([statement])) if with_attachments else []
        headers = {"Last-Modified": http_date(stored), "X-Experience-API-Consistent-Through": consistent}
        return _statement_response(st.formatted(statement, fmt, languages), files, with_attachments, headers)
    if "more" in xr.params:
        if len(xr.params) != 1:
            raise Invalid("more takes no other parameters")
        xr.params, cursor = cursors.decode(xr.params["more"], key=_cursor_key(), credential=xr.client.key)
        _allowed(xr, STATEMENT_GET_PARAMS - {"more"})
    else:
        cursor = None
    filters = _filters(xr)
    if xr.client.only_mine:
        filters_mine = xr.client.authority
    else:
        filters_mine = None
    with db.reading(_engine()) as conn:
        page, next_cursor = st.query(conn, filters, cursor, authority=filters_mine)
        files = st.load_attachments(conn, st.attachment_hashes(page)) if with_attachments else []
    more = ""
    if next_cursor is not None:
        more = f"{request.script_root}/xapi/statements?" + urlencode(
            {"more": cursors.encode(next_cursor, xr.params, key=_cursor_key(), credential=xr.client.key)})
    result = {"statements": [st.formatted(s, fmt, languages) for s in page], "more": more}
    headers = {"X-Experience-API-Consistent-Through": consistent, "Last-Modified": http_date(xapi.utc_now())}
    return _statement_response(result, files, with_attachments, headers)


def _check_mine(xr: XRequest, found: list[dict]) -> None:
    if xr.client.only_mine and any(s.get("authority") != xr.client.authority for s in found):
        raise XError(404, "no such statement")


def _filters(xr: XRequest) -> st.Filters:
    limit_raw = xr.param("limit")
    try:
        limit = int(limit_raw) if limit_raw is not None else 0
    except ValueError:
        raise Invalid("limit must be a non-negative integer") from None
    if limit < 0:
        raise Invalid("limit must be a non-negative integer")
    for name in ("verb", "activity"):
        if xr.param(name) is not None and not validation.is_iri(xr.param(name)):
            raise Invalid(f"{name} must be an IRI")
    registration = xr.param("registration")
    if registration is not None and not validation.is_uuid(registration):
        raise Invalid("registration must be a UUID")
    return st.Filters(
        agent=_agent_param(xr, required=False), verb=xr.param("verb"), activity=xr.param("activity"),
        registration=registration, related_activities=_bool_param(xr, "related_activities"),
        related_agents=_bool_param(xr, "related_agents"), since=_timestamp_param(xr, "since"),
        until=_timestamp_param(xr, "until"), limit=limit, ascending=_bool_param(xr, "ascending"))


def _statement_response(value, files, with_attachments: bool, headers: dict) -> Response:
    if not with_attachments:
        return _json_response(value, headers=headers)
    body, content_type = att.build_multipart(orjson.dumps(value), files)
    return Response(body, status=200, headers={**headers, "Content-Type": content_type})


# --- documents ----------------------------------------------------------------------

def _document(xr: XRequest, scope: Scope, id_param: str, allowed: set[str], *,
              require_precondition: bool) -> Response:
    document_id = xr.param(id_param)
    if xr.method in ("GET", "HEAD"):
        _allowed(xr, allowed | {id_param, "since"})
        if document_id is not None:
            if "since" in xr.params:
                raise Invalid("since applies only when listing documents")
            doc = documents.get(_engine(), scope, document_id)
            if doc is None:
                raise XError(404, "no such document")
            return Response(doc.content, status=200, headers={
                "Content-Type": doc.content_type, "ETag": f'"{doc.etag}"', "Last-Modified": http_date(doc.updated)})
        ids = documents.list_ids(_engine(), scope, _timestamp_param(xr, "since"))
        return _json_response(ids)
    if xr.method in ("PUT", "POST"):
        _allowed(xr, allowed | {id_param}, (id_param,))
        etag = documents.write_retrying(
            _engine(), scope, document_id, xr.body, xr.content_type.split(";")[0].strip() or
            "application/octet-stream", merge=xr.method == "POST", if_match=_etags(xr, "If-Match"),
            if_none_match=_etags(xr, "If-None-Match"),
            require_precondition=require_precondition and xr.method == "PUT",
            precondition_always=xr.version == V1 and scope.kind != "state")
        return Response(status=204, headers={"ETag": f'"{etag}"'})
    if xr.method == "DELETE":
        _allowed(xr, allowed | {id_param})
        documents.delete(_engine(), scope, document_id, if_match=_etags(xr, "If-Match"),
                         if_none_match=_etags(xr, "If-None-Match"))
        return Response(status=204)
    raise XError(405, "method not allowed")


def _activity_param(xr: XRequest) -> str:
    activity_id = xr.param("activityId", True)
    if not validation.is_iri(activity_id):
        raise Invalid("activityId must be an IRI")
    return activity_id


def state_resource(xr: XRequest) -> Response:
    _require(xr, "state")
    activity_id = _activity_param(xr)
    agent = _agent_param(xr)
    registration = xr.param("registration")
    if registration is not None and not validation.is_uuid(registration):
        raise Invalid("registration must be a UUID")
    if xr.method == "DELETE" and "stateId" not in xr.params:
        _allowed(xr, {"activityId", "agent", "registration"})
    scope = Scope("state", activity_id, st.agent_key(agent), (registration or "").lower())
    return _document(xr, scope, "stateId", {"activityId", "agent", "registration"},
                     require_precondition=xr.version == V2)


def activity_profile_resource(xr: XRequest) -> Response:
    _require(xr, "profile")
    scope = Scope("activity-profile", _activity_param(xr))
    if xr.method == "DELETE":
        xr.param("profileId", True)
    return _document(xr, scope, "profileId", {"activityId"}, require_precondition=True)


def agent_profile_resource(xr: XRequest) -> Response:
    _require(xr, "profile")
    scope = Scope("agent-profile", "", st.agent_key(_agent_param(xr)))
    if xr.method == "DELETE":
        xr.param("profileId", True)
    return _document(xr, scope, "profileId", {"agent"}, require_precondition=True)


# --- activities, agents, about -------------------------------------------------------

def activities_resource(xr: XRequest) -> Response:
    if xr.method not in ("GET", "HEAD"):
        raise XError(405, "GET only")
    _allowed(xr, {"activityId"}, ("activityId",))
    activity_id = _activity_param(xr)
    with db.reading(_engine()) as conn:
        definition = st.activity_definition(conn, activity_id)
    activity = {"objectType": "Activity", "id": activity_id}
    if definition:
        activity["definition"] = definition
    return _json_response(activity)


def agents_resource(xr: XRequest) -> Response:
    if xr.method not in ("GET", "HEAD"):
        raise XError(405, "GET only")
    _allowed(xr, {"agent"}, ("agent",))
    agent = _agent_param(xr)
    if agent.get("objectType") == "Group":
        raise Invalid("agent must be an Agent")
    person = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            person[key] = [agent[key]]
    return _json_response(person)


def about_resource(xr: XRequest) -> Response:
    if xr.method not in ("GET", "HEAD"):
        raise XError(405, "GET only")
    _allowed(xr, set())
    return _json_response({"version": ["1.0.3", "2.0.0"], "extensions": {}})


_view("/statements", statements_resource)
_view("/activities/state", state_resource)
_view("/activities/profile", activity_profile_resource)
_view("/agents/profile", agent_profile_resource)
_view("/activities", activities_resource)
_view("/agents", agents_resource)
_view("/about", about_resource, needs_auth=False, needs_version=False)

