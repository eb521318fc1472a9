"""The document resources: /xapi/activities/state, /xapi/activities/profile and
/xapi/agents/profile (GET one or the ids of a set, PUT, POST to merge JSON, DELETE),
with their ETag preconditions. Storage: services.progress.lrs.documents.
"""
from __future__ import annotations

from flask import Response
from werkzeug.http import http_date

from services.progress.lrs import documents, validation
from services.progress.lrs import protocol as p
from services.progress.lrs.deps import Lrs
from services.progress.lrs.documents import Scope
from services.progress.lrs.keys import agent_key
from services.progress.lrs.validation import V1, V2, Invalid


def _document(lrs: Lrs, xr: p.XRequest, scope: Scope, id_param: str, allowed: set[str], *,
              require_precondition: bool) -> Response:
    document_id = xr.param(id_param)
    if xr.method in ("GET", "HEAD"):
        p.allowed(xr, allowed | {id_param, "since"})
        if document_id is not None:
            if "since" in xr.params:
                raise Invalid("since applies only when listing documents")
            doc = documents.get(lrs.engine, scope, document_id)
            if doc is None:
                raise p.XError(404, "no such document")
            return Response(doc.content, status=200, headers={
                "Content-Type": doc.content_type, "ETag": f'"{doc.etag}"', "Last-Modified": http_date(doc.updated)})
        ids = documents.list_ids(lrs.engine, scope, p.timestamp_param(xr, "since"))
        return p.json_response(ids)
    if xr.method in ("PUT", "POST"):
        p.allowed(xr, allowed | {id_param}, (id_param,))
        etag = documents.write_retrying(
            lrs.engine, scope, document_id, xr.body, xr.content_type.split(";")[0].strip() or
            "application/octet-stream", merge=xr.method == "POST", if_match=p.etags(xr, "If-Match"),
            if_none_match=p.etags(xr, "If-None-Match"),
            require_precondition=require_precondition and xr.method == "PUT",
            precondition_always=xr.version == V1 and scope.kind != "state")
        return Response(status=204, headers={"ETag": f'"{etag}"'})
    if xr.method == "DELETE":
        p.allowed(xr, allowed | {id_param})
        documents.delete(lrs.engine, scope, document_id, if_match=p.etags(xr, "If-Match"),
                         if_none_match=p.etags(xr, "If-None-Match"))
        return Response(status=204)
    raise p.XError(405, "method not allowed")


def state_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    p.require(xr, "state")
    activity_id = p.activity_param(xr)
    agent = p.agent_param(xr)
    registration = xr.param("registration")
    if registration is not None and not validation.is_uuid(registration):
        raise Invalid("registration must be a UUID")
    if xr.method == "DELETE" and "stateId" not in xr.params:
        p.allowed(xr, {"activityId", "agent", "registration"})
    scope = Scope("state", activity_id, agent_key(agent), (registration or "").lower())
    return _document(lrs, xr, scope, "stateId", {"activityId", "agent", "registration"},
                     require_precondition=xr.version == V2)


def activity_profile_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    p.require(xr, "profile")
    scope = Scope("activity-profile", p.activity_param(xr))
    if xr.method == "DELETE":
        xr.param("profileId", True)
    return _document(lrs, xr, scope, "profileId", {"activityId"}, require_precondition=True)


def agent_profile_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    p.require(xr, "profile")
    scope = Scope("agent-profile", "", agent_key(p.agent_param(xr)))
    if xr.method == "DELETE":
        xr.param("profileId", True)
    return _document(lrs, xr, scope, "profileId", {"agent"}, require_precondition=True)


