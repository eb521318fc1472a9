"""xAPI statement validation (1.0.3 and 2.0.0), hand-written for speed.

Plain dict checks: marshmallow would cost ~160 µs per statement on the ingestion hot
path (docs/performance.md). Every failure raises `Invalid` with the path of the offending
property; the API turns it into 400. Pure Python: no Flask, no SQLAlchemy.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime

from shared import xapi

V1 = "1.0.3"
V2 = "2.0.0"


class Invalid(ValueError):
    """The request is not valid xAPI (always HTTP 400)."""


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# No white space and no control characters (RFC 3987 allows neither; PostgreSQL text
# cannot even hold a NUL).
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]*$")
_LANG = re.compile(r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?"
                   r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
                   r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-[xX](?:-[A-Za-z0-9]{1,8})+)?$"
                   r"|^[xX](?:-[A-Za-z0-9]{1,8})+$|^i-[a-z]+$")
_MBOX = re.compile(r"^mailto:[^@\s]+@[^@\s]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SHA2 = re.compile(r"^[0-9a-fA-F]{56,128}$")
_DURATION = re.compile(
    r"^P(?:(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?|\d+(?:\.\d+)?W)$")
_VERSION = re.compile(r"^(1\.0|2\.0)(\.\d+)?$")
_MIME = re.compile(r"^[\w.+\-]+/[\w.+\-]+(\s*;.*)?$")

INTERACTION_TYPES = {"true-false", "choice", "fill-in", "long-fill-in", "matching", "performance",
                     "sequencing", "likert", "numeric", "other"}
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")

_STATEMENT_KEYS = {"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority",
                   "version", "attachments", "objectType"}
_SUBSTATEMENT_KEYS = {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
_AGENT_KEYS = {"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"}
_GROUP_KEYS = _AGENT_KEYS | {"member"}
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_ACTIVITY_KEYS = {"objectType", "id", "definition"}
_DEFINITION_KEYS = {"name", "description", "type", "moreInfo", "extensions", "interactionType",
                    "correctResponsesPattern", *_COMPONENT_LISTS}
_RESULT_KEYS = {"score", "success", "completion", "response", "duration", "extensions"}
_SCORE_KEYS = {"scaled", "raw", "min", "max"}
_CONTEXT_KEYS = {"registration", "instructor", "team", "contextActivities", "revision", "platform", "language",
                 "statement", "extensions"}
_CONTEXT_KEYS_V2 = _CONTEXT_KEYS | {"contextAgents", "contextGroups"}
_CONTEXT_ACTIVITY_KEYS = {"parent", "grouping", "category", "other"}
_ATTACHMENT_KEYS = {"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"}


def _fail(path: str, problem: str):
    raise Invalid(f"{path}: {problem}")


def _obj(value, path: str, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        _fail(path, "must be a JSON object")
    for key, item in value.items():
        if key not in allowed:
            _fail(f"{path}.{key}", "is not an allowed property here")
        if item is None:
            _fail(f"{path}.{key}", "must not be null")
    return value


def _str(value, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    return value


def _bool(value, path: str) -> None:
    if not isinstance(value, bool):
        _fail(path, "must be true or false")


def _number(value, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, "must be a number")
    return value


def is_uuid(value) -> bool:
    return isinstance(value, str) and _UUID.match(value) is not None


def _uuid(value, path: str) -> None:
    if not is_uuid(value):
        _fail(path, "must be a UUID")


def is_iri(value) -> bool:
    return isinstance(value, str) and _IRI.match(value) is not None


def _iri(value, path: str) -> None:
    if not is_iri(value):
        _fail(path, "must be an absolute IRI")


def is_language(tag) -> bool:
    return isinstance(tag, str) and _LANG.match(tag) is not None


def _language_map(value, path: str) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be a language map (an object)")
    for tag, text in value.items():
        if not is_language(tag):
            _fail(f"{path}.{tag}", "is not an RFC 5646 language tag")
        if not isinstance(text, str):
            _fail(f"{path}.{tag}", "must be a string")


def _extensions(value, path: str) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    for key in value:
        if not is_iri(key):
            _fail(f"{path}.{key}", "extension keys must be IRIs")


def parse_timestamp(value, path: str = "timestamp") -> datetime:
    """shared.xapi's one timestamp parser, its refusal as Invalid (400)."""
    try:
        return xapi.parse_timestamp(value, path)
    except xapi.InvalidStatement as exc:
        raise Invalid(str(exc)) from None


def actor(value, path: str, version: str, *, allow_group: bool = True, ifi_required: bool = True) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be an Agent or Group object")
    kind = value.get("objectType", "Agent")
    if kind == "Group" and allow_group:
        _group(value, path, version)
    elif kind == "Agent":
        _obj(value, path, _AGENT_KEYS)
        if "name" in value:
            _str(value["name"], f"{path}.name")
        if _ifi_count(value, path) != 1:
            _fail(path, "an Agent needs exactly one inverse functional identifier")
    else:
        _fail(f"{path}.objectType", "must be Agent" + (" or Group" if allow_group else ""))


def _group(value, path: str, version: str) -> None:
    _obj(value, path, _GROUP_KEYS)
    if "name" in value:
        _str(value["name"], f"{path}.name")
    count = _ifi_count(value, path)
    if count > 1:
        _fail(path, "a Group has at most one inverse functional identifier")
    members = value.get("member")
    if members is not None:
        if not isinstance(members, list):
            _fail(f"{path}.member", "must be an array of Agents")
        for i, member in enumerate(members):
            actor(member, f"{path}.member[{i}]", version, allow_group=False)
    if count == 0 and not members:
        _fail(path, "an anonymous Group needs members")


def _ifi_count(value: dict, path: str) -> int:
    count = 0
    if "mbox" in value:
        count += 1
        if not isinstance(value["mbox"], str) or not _MBOX.match(value["mbox"]):
            _fail(f"{path}.mbox", "must be a mailto: IRI")
    if "mbox_sha1sum" in value:
        count += 1
        if not isinstance(value["mbox_sha1sum"], str) or not _SHA1.match(value["mbox_sha1sum"]):
            _fail(f"{path}.mbox_sha1sum", "must be a hex SHA-1")
    if "openid" in value:
        count += 1
        _iri(value["openid"], f"{path}.openid")
    if "account" in value:
        count += 1
        account = _obj(value["account"], f"{path}.account", {"homePage", "name"})
        if "homePage" not in account or "name" not in account:
            _fail(f"{path}.account", "needs homePage and name")
        _iri(account["homePage"], f"{path}.account.homePage")
        _str(account["name"], f"{path}.account.name")
    return count


def verb(value, path: str) -> None:
    _obj(value, path, {"id", "display"})
    if "id" not in value:
        _fail(f"{path}.id", "is required")
    _iri(value["id"], f"{path}.id")
    if "display" in value:
        _language_map(value["display"], f"{path}.display")


def activity(value, path: str) -> None:
    _obj(value, path, _ACTIVITY_KEYS)
    if value.get("objectType", "Activity") != "Activity":
        _fail(f"{path}.objectType", "must be Activity")
    if "id" not in value:
        _fail(f"{path}.id", "is required")
    _iri(value["id"], f"{path}.id")
    if "definition" in value:
        _definition(value["definition"], f"{path}.definition")


def _definition(value, path: str) -> None:
    _obj(value, path, _DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in value:
            _language_map(value[key], f"{path}.{key}")
    if "type" in value:
        _iri(value["type"], f"{path}.type")
    if "moreInfo" in value:
        _iri(value["moreInfo"], f"{path}.moreInfo")
    if "extensions" in value:
        _extensions(value["extensions"], f"{path}.extensions")
    kind = value.get("interactionType")
    if kind is not None and (not isinstance(kind, str) or kind not in INTERACTION_TYPES):
        _fail(f"{path}.interactionType", "is not an xAPI interaction type")
    if "correctResponsesPattern" in value:
        pattern = value["correctResponsesPattern"]
        if not isinstance(pattern, list) or not all(isinstance(p, str) for p in pattern):
            _fail(f"{path}.correctResponsesPattern", "must be an array of strings")
    for key in _COMPONENT_LISTS:
        if key in value:
            if kind is None:
                _fail(f"{path}.{key}", "needs an interactionType")
            components = value[key]
            if not isinstance(components, list):
                _fail(f"{path}.{key}", "must be an array")
            seen = set()
            for i, component in enumerate(components):
                _obj(component, f"{path}.{key}[{i}]", {"id", "description"})
                if "id" not in component:
                    _fail(f"{path}.{key}[{i}].id", "is required")
                _str(component["id"], f"{path}.{key}[{i}].id")
                if component["id"] in seen:
                    _fail(f"{path}.{key}[{i}].id", "is not unique")
                seen.add(component["id"])
                if "description" in component:
                    _language_map(component["description"], f"{path}.{key}[{i}].description")
    if ("correctResponsesPattern" in value) and kind is None:
        _fail(f"{path}.correctResponsesPattern", "needs an interactionType")


def _statement_ref(value, path: str) -> None:
    _obj(value, path, {"objectType", "id"})
    if "id" not in value:
        _fail(f"{path}.id", "is required")
    _uuid(value["id"], f"{path}.id")


def _object(value, path: str, version: str, *, in_substatement: bool) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        activity(value, path)
    elif kind in ("Agent", "Group"):
        actor(value, path, version)
    elif kind == "StatementRef":
        _statement_ref(value, path)
    elif kind == "SubStatement" and not in_substatement:
        _substatement(value, path, version)
    else:
        _fail(f"{path}.objectType", "is not a valid object type here")


def _result(value, path: str) -> None:
    _obj(value, path, _RESULT_KEYS)
    if "score" in value:
        score = _obj(value["score"], f"{path}.score", _SCORE_KEYS)
        for key in _SCORE_KEYS & score.keys():
            _number(score[key], f"{path}.score.{key}")
        if "scaled" in score and not -1 <= score["scaled"] <= 1:
            _fail(f"{path}.score.scaled", "must be between -1 and 1")
        low, high, raw = score.get("min"), score.get("max"), score.get("raw")
        if low is not None and high is not None and low >= high:
            _fail(f"{path}.score.min", "must be less than max")
        if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
            _fail(f"{path}.score.raw", "must be between min and max")
    for key in ("success", "completion"):
        if key in value:
            _bool(value[key], f"{path}.{key}")
    if "response" in value:
        _str(value["response"], f"{path}.response")
    if "duration" in value:
        if not isinstance(value["duration"], str) or not _DURATION.match(value["duration"]) \
                or value["duration"] in ("P", "PT") or value["duration"].endswith("T"):
            _fail(f"{path}.duration", "must be an ISO 8601 duration")
    if "extensions" in value:
        _extensions(value["extensions"], f"{path}.extensions")


def _context(value, path: str, version: str, object_is_activity: bool) -> None:
    _obj(value, path, _CONTEXT_KEYS_V2 if version == V2 else _CONTEXT_KEYS)
    if "registration" in value:
        _uuid(value["registration"], f"{path}.registration")
    if "instructor" in value:
        actor(value["instructor"], f"{path}.instructor", version)
    if "team" in value:
        team = value["team"]
        if not isinstance(team, dict) or team.get("objectType") != "Group":
            _fail(f"{path}.team", "must be a Group")
        actor(team, f"{path}.team", version)
    if "contextActivities" in value:
        activities = _obj(value["contextActivities"], f"{path}.contextActivities", _CONTEXT_ACTIVITY_KEYS)
        for key, item in activities.items():
            items = item if isinstance(item, list) else [item]
            for i, act in enumerate(items):
                activity(act, f"{path}.contextActivities.{key}[{i}]")
    for key in ("revision", "platform"):
        if key in value:
            _str(value[key], f"{path}.{key}")
            if not object_is_activity:
                _fail(f"{path}.{key}", "is only allowed when the object is an Activity")
    if "language" in value and not is_language(value["language"]):
        _fail(f"{path}.language", "is not an RFC 5646 language tag")
    if "statement" in value:
        ref = value["statement"]
        if not isinstance(ref, dict) or ref.get("objectType") != "StatementRef":
            _fail(f"{path}.statement", "must be a StatementRef")
        _statement_ref(ref, f"{path}.statement")
    if "extensions" in value:
        _extensions(value["extensions"], f"{path}.extensions")
    for key, inner, kind in (("contextAgents", "agent", "contextAgent"), ("contextGroups", "group", "contextGroup")):
        if key not in value:
            continue
        if not isinstance(value[key], list):
            _fail(f"{path}.{key}", "must be an array")
        for i, item in enumerate(value[key]):
            where = f"{path}.{key}[{i}]"
            _obj(item, where, {"objectType", inner, "relevantTypes"})
            if item.get("objectType") != kind:
                _fail(f"{where}.objectType", f"must be {kind}")
            if inner not in item:
                _fail(f"{where}.{inner}", "is required")
            if inner == "agent":
                actor(item[inner], f"{where}.agent", version, allow_group=False)
            else:
                if not isinstance(item[inner], dict) or item[inner].get("objectType") != "Group":
                    _fail(f"{where}.group", "must be a Group")
                actor(item[inner], f"{where}.group", version)
            if "relevantTypes" in item:
                types = item["relevantTypes"]
                if not isinstance(types, list) or not types:
                    _fail(f"{where}.relevantTypes", "must be a non-empty array of IRIs")
                for j, iri in enumerate(types):
                    _iri(iri, f"{where}.relevantTypes[{j}]")


def attachment(value, path: str) -> None:
    _obj(value, path, _ATTACHMENT_KEYS)
    for key in ("usageType", "display", "contentType", "length", "sha2"):
        if key not in value:
            _fail(f"{path}.{key}", "is required")
    _iri(value["usageType"], f"{path}.usageType")
    _language_map(value["display"], f"{path}.display")
    if "description" in value:
        _language_map(value["description"], f"{path}.description")
    if not isinstance(value["contentType"], str) or not _MIME.match(value["contentType"]):
        _fail(f"{path}.contentType", "must be an Internet media type")
    if isinstance(value["length"], bool) or not isinstance(value["length"], int) or value["length"] < 0:
        _fail(f"{path}.length", "must be a non-negative integer")
    if not isinstance(value["sha2"], str) or not _SHA2.match(value["sha2"]):
        _fail(f"{path}.sha2", "must be a hex SHA-2 digest")
    if "fileUrl" in value:
        _iri(value["fileUrl"], f"{path}.fileUrl")


def _core(value: dict, path: str, version: str, *, in_substatement: bool) -> None:
    for key in ("actor", "verb", "object"):
        if key not in value:
            _fail(f"{path}.{key}", "is required")
    actor(value["actor"], f"{path}.actor", version)
    verb(value["verb"], f"{path}.verb")
    _object(value["object"], f"{path}.object", version, in_substatement=in_substatement)
    if "result" in value:
        _result(value["result"], f"{path}.result")
    if "context" in value:
        is_activity = isinstance(value["object"], dict) and value["object"].get("objectType", "Activity") == "Activity"
        _context(value["context"], f"{path}.context", version, is_activity)
    if "timestamp" in value:
        parse_timestamp(value["timestamp"], f"{path}.timestamp")
    if "attachments" in value:
        if not isinstance(value["attachments"], list):
            _fail(f"{path}.attachments", "must be an array")
        for i, item in enumerate(value["attachments"]):
            attachment(item, f"{path}.attachments[{i}]")


def _substatement(value, path: str, version: str) -> None:
    _obj(value, path, _SUBSTATEMENT_KEYS)
    _core(value, path, version, in_substatement=True)


def statement(value, version: str, path: str = "statement") -> None:
    """Validate one statement as sent by a client; raise Invalid on the first problem."""
    _obj(value, path, _STATEMENT_KEYS)
    if "objectType" in value and value["objectType"] != "Statement":
        _fail(f"{path}.objectType", "must be Statement")
    if "id" in value:
        _uuid(value["id"], f"{path}.id")
    _core(value, path, version, in_substatement=False)
    if "stored" in value:
        parse_timestamp(value["stored"], f"{path}.stored")
    if "version" in value:
        if not isinstance(value["version"], str) or not _VERSION.match(value["version"]):
            _fail(f"{path}.version", "must be 1.0.x or 2.0.x")
    if "authority" in value:
        authority = value["authority"]
        actor(authority, f"{path}.authority", version)
        if isinstance(authority, dict) and authority.get("objectType") == "Group":
            if any(k in authority for k in _IFIS):
                _fail(f"{path}.authority", "a Group authority must be anonymous (an OAuth pair)")
            members = authority.get("member") or []
            if len(members) != 2:
                _fail(f"{path}.authority", "a Group authority must be an OAuth pair of two Agents")
            if not any("account" in m for m in members):
                _fail(f"{path}.authority", "a Group authority must include an OAuth consumer account")
    if value.get("verb", {}).get("id") == xapi.VOIDED.id:
        obj = value["object"]
        if obj.get("objectType") != "StatementRef":
            _fail(f"{path}.object", "a voiding statement's object must be a StatementRef")


def new_id() -> str:
    return str(uuid.uuid4())


_SECONDS = re.compile(r"(\d+)\.(\d+)S$")
_IGNORED = frozenset(xapi.SET_BY_LRS) - {"timestamp"} | {"attachments"}
_IGNORED_WITH_TIMESTAMP = _IGNORED | {"timestamp"}


def comparable_duration(duration: str) -> str:
    """Durations compare to 0.01 s (xAPI 2.0 §4.2.7): drop finer precision."""
    return _SECONDS.sub(lambda m: f"{m.group(1)}.{(m.group(2) + '00')[:2]}S", duration)


def comparable(statement: dict, *, timestamp_set_by_lrs: bool = False) -> dict:
    """A statement as compared for sameness: durations truncated; what the LRS sets
    (shared.xapi.SET_BY_LRS: the timestamp only if the LRS set it) and the attachments
    (compared on their own) left out."""
    ignored = _IGNORED_WITH_TIMESTAMP if timestamp_set_by_lrs else _IGNORED
    out = {k: v for k, v in statement.items() if k not in ignored}
    if isinstance(out.get("object"), dict):
        out["object"] = dict(out["object"])
    for part in (out, out.get("object") if isinstance(out.get("object"), dict) else {}):
        result = part.get("result")
        if isinstance(result, dict) and isinstance(result.get("duration"), str):
            part["result"] = {**result, "duration": comparable_duration(result["duration"])}
    return out
