"""/xapi/statements: GET (one statement, or a page of a query), PUT (one, with its
id), POST (one or many; multipart/mixed with attachments; signed statements).

POSTs of up to store.CHUNK statements go to the LRS's group committer (lrs.writer),
which commits them with other requests' in one transaction; a bulk POST is prepared in
slices between which the event loop serves others, and committed in chunks.
"""
from __future__ import annotations

from urllib.parse import urlencode

import orjson
from flask import Response
from werkzeug.http import http_date

from services.progress.lrs import attachments as att
from services.progress.lrs import auth, cursors, queries, signatures, store, validation
from services.progress.lrs import protocol as p
from services.progress.lrs.deps import Lrs
from services.progress.lrs.keys import agent_key
from services.progress.lrs.validation import Invalid
from shared import db, xapi
from shared.blocking import cooperate

STATEMENT_GET_PARAMS = {"statementId", "voidedStatementId", "agent", "verb", "activity", "registration",
                        "related_activities", "related_agents", "since", "until", "limit", "format",
                        "attachments", "ascending", "more"}


def statements_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    if xr.method in ("GET", "HEAD"):
        p.require(xr, "statements/read")
        return _get_statements(lrs, xr)
    if xr.method == "PUT":
        p.require(xr, "statements/write")
        p.allowed(xr, {"statementId"}, ("statementId",))
        if not validation.is_uuid(xr.params["statementId"]):
            raise Invalid("statementId must be a UUID")
        return _post_statements(lrs, xr, put_id=xr.params["statementId"].lower())
    if xr.method == "POST":
        p.require(xr, "statements/write")
        p.allowed(xr, set())
        return _post_statements(lrs, xr, put_id=None)
    raise p.XError(405, "method not allowed on /statements")


def _parse_statement_body(xr: p.XRequest) -> tuple[object, dict[str, tuple[str, bytes]]]:
    ctype = xr.content_type.split(";")[0].strip().lower()
    if ctype == "multipart/mixed":
        body, parts = att.parse_multipart(xr.content_type, xr.body)
        return p.json_body(body, "the statement part"), parts
    if ctype != "application/json" and not (xr.alternate and ctype in ("", "application/json")):
        raise Invalid("statements are sent as application/json or multipart/mixed")
    if not xr.body:
        raise Invalid("no statement in the request body")
    return p.json_body(xr.body, "the request body"), {}


def _post_statements(lrs: Lrs, xr: p.XRequest, put_id: str | None) -> Response:
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
    client = xr.client
    if not batch:  # an empty array: nothing to store (an empty INSERT was a 500, found by fuzzing)
        att.check_parts(batch, parts)
        return p.json_response([])
    if client.session is not None:
        # A cmi5 session's statements: judged against its session by the LMS, which stores
        # them with its own in one transaction (deps.SessionHook).
        _validated(batch, parts, xr.version)
        ids = lrs.sessions.store(client, batch, lambda: _rows(batch, xr.version, client, lrs.topic), parts,
                                 "PUT" if put_id is not None else "POST")
    elif len(batch) <= store.CHUNK:
        rows = _prepared(batch, parts, xr.version, client, lrs.topic)
        # Committed together with whatever other requests this process is writing now.
        ids = lrs.writer.submit((rows, parts))
    else:
        # A bulk request: its seconds of CPU in slices with the event loop serving other
        # clients in between, and its statements in transactions of CHUNK
        # (store.store_in_chunks says why).
        rows = _prepared(batch, parts, xr.version, client, lrs.topic, pause=cooperate)
        ids = store.store_in_chunks(lrs.engine, rows, parts, outbox_table=lrs.outbox, topic=lrs.topic)
    if put_id is not None:
        return Response(status=204)
    return p.json_response(ids)


def _prepared(batch: list[dict], parts: dict, version: str, client: auth.Client, topic: str,
              pause=None) -> store.Batch:
    """The request's statements checked and turned into rows, or Invalid; `pause()`
    between slices of the work, if given."""
    _validated(batch, parts, version, pause)
    return _rows(batch, version, client, topic, pause)


def _validated(batch: list[dict], parts: dict, version: str, pause=None) -> None:
    for i, statement in enumerate(store.paced(batch, pause)):
        path = f"statement[{i}]" if len(batch) > 1 else "statement"
        if xapi.too_deep(statement):  # before anything else looks at it (shared.xapi.MAX_DEPTH)
            raise Invalid(f"{path}: nests more than {xapi.MAX_DEPTH} objects or arrays deep")
        validation.statement(statement, version, path)
    att.check_parts(batch, parts)
    signatures.verify_all(batch, parts)


def _rows(batch: list[dict], version: str, client: auth.Client, topic: str, pause=None) -> store.Batch:
    now = xapi.utc_now()
    authority = client.authority
    for statement in store.paced(batch, pause):  # prepare sets the authority from the credentials (xAPI 2.4.9)
        store.prepare(statement, authority=authority, version=version, stored=now)
    void_right = store.VoidRight(agent_key(authority), client.may_void_any)
    return store.rows_for(batch, topic=topic, void_right=void_right, pause=pause)


def _get_statements(lrs: Lrs, xr: p.XRequest) -> Response:
    p.allowed(xr, STATEMENT_GET_PARAMS)
    fmt = xr.param("format") or "exact"
    if fmt not in ("exact", "ids", "canonical"):
        raise Invalid("format must be exact, ids or canonical")
    with_attachments = p.bool_param(xr, "attachments")
    languages = p.languages(xr)
    consistent = xapi.format_timestamp(xapi.utc_now())
    single = [k for k in ("statementId", "voidedStatementId") if k in xr.params]
    if single:
        if len(single) > 1 or set(xr.params) - {"statementId", "voidedStatementId", "format", "attachments"}:
            raise Invalid("statementId/voidedStatementId take no other parameters but format and attachments")
        wanted = xr.params[single[0]]
        if not validation.is_uuid(wanted):
            raise Invalid(f"{single[0]} must be a UUID")
        with db.reading(lrs.engine) as conn:
            found = queries.get_one(conn, wanted, voided=single[0] == "voidedStatementId")
            if found is None:
                raise p.XError(404, "no such statement")
            statement, stored = found
            _check_mine(xr, [statement])
            files = queries.load_attachments(conn, queries.attachment_hashes([statement])) if with_attachments else []
        headers = {"Last-Modified": http_date(stored), "X-Experience-API-Consistent-Through": consistent}
        return _statement_response(queries.formatted(statement, fmt, languages), files, with_attachments, headers)
    if "more" in xr.params:
        if len(xr.params) != 1:
            raise Invalid("more takes no other parameters")
        xr.params, cursor = cursors.decode(xr.params["more"], key=lrs.cursor_key(), credential=xr.client.key)
        p.allowed(xr, STATEMENT_GET_PARAMS - {"more"})
    else:
        cursor = None
    filters = _filters(xr)
    if xr.client.only_mine:
        filters_mine = xr.client.authority
    else:
        filters_mine = None
    with db.reading(lrs.engine) as conn:
        page, next_cursor = queries.query(conn, filters, cursor, authority=filters_mine)
        files = queries.load_attachments(conn, queries.attachment_hashes(page)) if with_attachments else []
    more = ""
    if next_cursor is not None:
        more = f"{xr.script_root}/xapi/statements?" + urlencode(
            {"more": cursors.encode(next_cursor, xr.params, key=lrs.cursor_key(), credential=xr.client.key)})
    result = {"statements": [queries.formatted(s, fmt, languages) for s in page], "more": more}
    headers = {"X-Experience-API-Consistent-Through": consistent, "Last-Modified": http_date(xapi.utc_now())}
    return _statement_response(result, files, with_attachments, headers)


def _check_mine(xr: p.XRequest, found: list[dict]) -> None:
    if xr.client.only_mine and any(s.get("authority") != xr.client.authority for s in found):
        raise p.XError(404, "no such statement")


def _filters(xr: p.XRequest) -> queries.Filters:
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
    return queries.Filters(
        agent=p.agent_param(xr, required=False), verb=xr.param("verb"), activity=xr.param("activity"),
        registration=registration, related_activities=p.bool_param(xr, "related_activities"),
        related_agents=p.bool_param(xr, "related_agents"), since=p.timestamp_param(xr, "since"),
        until=p.timestamp_param(xr, "until"), limit=limit, ascending=p.bool_param(xr, "ascending"))


def _statement_response(value, files, with_attachments: bool, headers: dict) -> Response:
    if not with_attachments:
        return p.json_response(value, headers=headers)
    body, content_type = att.build_multipart(orjson.dumps(value), files)
    return Response(body, status=200, headers={**headers, "Content-Type": content_type})


