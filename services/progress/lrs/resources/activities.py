"""/xapi/activities (an activity's definition, as statements brought it) and
/xapi/agents (the Person object of an agent): GET only.
"""
from __future__ import annotations

from flask import Response

from services.progress.lrs import protocol as p
from services.progress.lrs import queries
from services.progress.lrs.deps import Lrs
from services.progress.lrs.validation import Invalid
from shared import db


def activities_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    if xr.method not in ("GET", "HEAD"):
        raise p.XError(405, "GET only")
    p.allowed(xr, {"activityId"}, ("activityId",))
    activity_id = p.activity_param(xr)
    with db.reading(lrs.engine) as conn:
        definition = queries.activity_definition(conn, activity_id)
    activity = {"objectType": "Activity", "id": activity_id}
    if definition:
        activity["definition"] = definition
    return p.json_response(activity)


def agents_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    if xr.method not in ("GET", "HEAD"):
        raise p.XError(405, "GET only")
    p.allowed(xr, {"agent"}, ("agent",))
    agent = p.agent_param(xr)
    if agent.get("objectType") == "Group":
        raise Invalid("agent must be an Agent")
    person = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            person[key] = [agent[key]]
    return p.json_response(person)
