"""xAPI's protocol: what every LRS resource shares, before and after its own work.

A request (a Flask view's, or a statement POST web.StatementIngest takes itself)
becomes an `XRequest`: the 1.0.3 alternate request syntax undone (`?method=` with a
form of parameters and headers), credentials checked (HTTP Basic: auth.py), the
X-Experience-API-Version header read. The resource's handler (resources/) answers it;
`answer` turns every refusal into xAPI's status codes and JSON body (validation.Invalid
400, Conflict 409, Forbidden 403, documents' preconditions 412/409, a database out of
reach 503, anything else 500 without a trace) and adds CORS and the version and
consistency headers. Handlers take (lrs, xr): the LRS's dependencies (deps.Lrs) are
passed in, never looked up on Flask's current_app.
"""
from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

import orjson
from flask import Response
from werkzeug.datastructures import EnvironHeaders, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_accept_header

from services.progress.lrs import auth, documents, store, validation
from services.progress.lrs.deps import Lrs
from services.progress.lrs.validation import V1, V2, Invalid
from shared import xapi
from shared.http import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, database_unavailable, whole_body

log = logging.getLogger(__name__)

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
    script_root: str = ""  # where the app is mounted (WSGI SCRIPT_NAME): page links start there

    def param(self, name: str, required: bool = False) -> str | None:
        value = self.params.get(name)
        if required and value is None:
            raise Invalid(f"the {name} parameter is required")
        return value


Handler = Callable[[Lrs, XRequest], Response]


def json_response(value, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(value), status=status, mimetype="application/json", headers=headers)


def error(status: int, message: str, headers: dict | None = None) -> Response:
    return json_response({"error": {"code": status, "message": message}}, status, headers)


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
    xr = XRequest(environ["REQUEST_METHOD"], params, headers, body, headers.get("Content-Type", ""),
                  script_root=environ.get("SCRIPT_NAME", "").encode("latin-1").decode(errors="replace").rstrip("/"))
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


def _authenticate(xr: XRequest, lrs: Lrs) -> None:
    header = xr.headers.get("Authorization", "")
    challenge = {"WWW-Authenticate": 'Basic realm="learnstream xAPI"'}
    if xr.headers.get("Sec-Fetch-Mode", "navigate") != "navigate":
        # A script's fetch() in a browser (only browsers send Sec-Fetch-Mode): a Basic
        # challenge would open the browser's login dialog over the page and stall it, as
        # it did a cmi5 AU trying a stale token. The script has its credentials already.
        challenge = {}
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise XError(401, "credentials required (HTTP Basic: LRS key and secret)", challenge)
    try:
        key, _, secret = base64.b64decode(token.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise XError(401, "malformed credentials", challenge) from None
    if lrs.sessions is not None and lrs.sessions.owns(key):
        client = lrs.sessions.authenticate(key, secret)  # a cmi5 session's token (deps.SessionHook)
    else:
        client = auth.authenticate(lrs.engine, key, secret, lrs.accounts)
    if client is None:
        raise XError(401, "unknown key or wrong secret", challenge)
    xr.client = client


def require(xr: XRequest, action: str) -> None:
    if not xr.client.may(action):
        raise XError(403, f"this credential lacks the {action} scope")


def allowed(xr: XRequest, names: set[str], required: tuple[str, ...] = ()) -> None:
    for key in xr.params:
        if key not in names:
            raise Invalid(f"unknown parameter {key!r}")
    for key in required:
        if key not in xr.params:
            raise Invalid(f"the {key} parameter is required")


# The version each credential last spoke, per process: the version a response names
# when its request named none (or an unknown one) and was refused for it.
_last_version: dict[str, str] = {}


def answer(lrs: Lrs, environ: dict, handler: Handler, *, needs_auth: bool = True,
           needs_version: bool = True) -> Response:
    """Everything xAPI asks of every resource: credentials, the version header, errors as
    JSON with xAPI's status codes, CORS and the version and consistency headers."""
    answer_v2 = False  # the version the response names
    try:
        xr = _build_request(environ)
        if needs_auth:
            _authenticate(xr, lrs)
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
        if xr.client is not None and xr.client.session is not None:
            # A session's token reaches only what its session may (lrs.sessions says).
            lrs.sessions.admit(xr.client, xr.method, environ.get("PATH_INFO", ""), xr.params)
        response = handler(lrs, xr)
    except Invalid as exc:
        response = error(400, str(exc))
    except XError as exc:
        response = error(exc.status, exc.message, exc.headers)
    except store.Conflict as exc:
        response = error(409, str(exc))
    except store.Forbidden as exc:
        response = error(403, str(exc))
    except documents.PreconditionFailed as exc:
        response = error(412, str(exc))
    except documents.PreconditionRequired as exc:
        response = error(409, str(exc))
    except Exception as exc:
        if database_unavailable(exc, environ.get("PATH_INFO", "")):
            response = error(503, DATABASE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        else:
            # xAPI clients get an answer, never a stack trace; the log has the details.
            log.exception("LRS request failed", extra={"path": environ.get("PATH_INFO"),
                                                       "method": environ["REQUEST_METHOD"]})
            response = error(500, "internal error")
    response.headers.update(CORS_HEADERS)
    if environ.get("PATH_INFO", "").endswith("/statements") and \
            "X-Experience-API-Consistent-Through" not in response.headers:
        # On every statement response, errors included (xAPI 2.1.3.s2.b5): all committed.
        response.headers["X-Experience-API-Consistent-Through"] = xapi.format_timestamp(xapi.utc_now())
    response.headers["X-Experience-API-Version"] = V2 if answer_v2 else V1
    return response


def preflight() -> Response:
    """A browser's CORS preflight (OPTIONS): no credentials, no version."""
    return Response(status=200, headers=CORS_HEADERS)


# --- parameters ---------------------------------------------------------------------

def json_body(body: bytes, what: str):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid(f"{what} is not valid JSON") from None


def agent_param(xr: XRequest, name: str = "agent", required: bool = True) -> dict | None:
    raw = xr.param(name, required)
    if raw is None:
        return None
    agent = json_body(raw.encode(), name)
    validation.actor(agent, name, xr.version)
    return agent


def bool_param(xr: XRequest, name: str) -> bool:
    raw = xr.param(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise Invalid(f"{name} must be true or false")
    return raw.lower() == "true"


def timestamp_param(xr: XRequest, name: str) -> datetime | None:
    raw = xr.param(name)
    return None if raw is None else validation.parse_timestamp(raw, name)


def etags(xr: XRequest, header: str) -> list[str] | None:
    raw = xr.headers.get(header)
    if raw is None:
        return None
    return [tag.strip().removeprefix("W/").strip('"') for tag in raw.split(",")]


def languages(xr: XRequest) -> list[str]:
    raw = xr.headers.get("Accept-Language")
    if not raw:
        return []
    return [lang for lang, _ in parse_accept_header(raw)]


def activity_param(xr: XRequest) -> str:
    activity_id = xr.param("activityId", True)
    if not validation.is_iri(activity_id):
        raise Invalid("activityId must be an IRI")
    return activity_id
