"""Reading statements: GET /xapi/statements' pages, single statements, their formats
(exact, ids, canonical), their attachments, and activity definitions. No Flask here;
nothing here writes. Storing: store.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.progress.lrs import tables as t
from services.progress.lrs.keys import activity_key, agent_key, digest
from shared import xapi

MAX_PAGE = 500


def get_one(conn: Connection, statement_id: str, *, voided: bool) -> tuple[dict, datetime] | None:
    row = conn.execute(sa.select(t.statements.c.payload, t.statements.c.stored, t.statements.c.voided)
                       .where(t.statements.c.id == statement_id.lower())).first()
    if row is None or row.voided != voided:
        return None
    return orjson.loads(row.payload), row.stored


@dataclass
class Filters:
    agent: dict | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 0
    ascending: bool = False


def query(conn: Connection, filters: Filters, cursor: dict | None = None,
          authority: dict | None = None) -> tuple[list[dict], dict | None]:
    """One page of statements (not voided), newest stored first unless ascending; and the
    cursor for the next page, if there is one. `authority`: only statements it stored."""
    s = t.statements
    q = sa.select(s.c.seq, s.c.payload, s.c.stored).where(s.c.voided.is_(False))
    if authority is not None:
        q = q.where(s.c.seq.in_(_indexed(s, "U", agent_key(authority))))
    matching = _matching(s, filters)
    if matching:
        # A statement whose StatementRef targets a matching statement matches too (xAPI
        # 2.1.3 filter rules), even when the target is voided: one and two links deep.
        first, second = t.statements.alias("target"), t.statements.alias("target2")
        targets = sa.select(first.c.id).where(*_matching(first, filters))
        via = sa.select(second.c.id).where(second.c.object_ref.in_(targets))
        q = q.where(sa.or_(sa.and_(*matching), s.c.object_ref.in_(targets), s.c.object_ref.in_(via)))
    if filters.since is not None:
        q = q.where(s.c.stored > filters.since)
    if filters.until is not None:
        q = q.where(s.c.stored <= filters.until)
    if cursor:
        after = (xapi.parse_timestamp(cursor["stored"]), cursor["seq"])
        if filters.ascending:
            q = q.where(sa.tuple_(s.c.stored, s.c.seq) > after)
        else:
            q = q.where(sa.tuple_(s.c.stored, s.c.seq) < after)
    order = (s.c.stored.asc(), s.c.seq.asc()) if filters.ascending else (s.c.stored.desc(), s.c.seq.desc())
    limit = min(filters.limit or MAX_PAGE, MAX_PAGE)
    rows = conn.execute(q.order_by(*order).limit(limit + 1)).all()
    page = [orjson.loads(row.payload) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = {"stored": last.stored.isoformat(), "seq": last.seq}
    return page, next_cursor


def _indexed(table, kind: str, key: str):
    """Statements mentioning `key`: kind "A"/"C" directly, "a"/"c" directly or anywhere."""
    kinds = [kind.upper(), kind] if kind in ("a", "c") else [kind]
    return sa.select(t.statement_index.c.statement_seq).where(
        t.statement_index.c.kind.in_(kinds), t.statement_index.c.hash == key)


def _matching(table, filters: Filters) -> list:
    clauses = []
    if filters.agent is not None:
        clauses.append(table.c.seq.in_(_indexed(table, "a" if filters.related_agents else "A",
                                                agent_key(filters.agent))))
    if filters.activity is not None:
        clauses.append(table.c.seq.in_(_indexed(table, "c" if filters.related_activities else "C",
                                                activity_key(filters.activity))))
    if filters.verb is not None:
        clauses.append(table.c.verb_hash == digest(filters.verb))
    if filters.registration is not None:
        clauses.append(table.c.registration == filters.registration.lower())
    return clauses


# --- formats --------------------------------------------------------------------------

def _ids_actor(agent: dict) -> dict:
    out = {"objectType": agent.get("objectType", "Agent")}
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            out[key] = agent[key]
            break
    if out["objectType"] == "Group" and "member" in agent:
        out["member"] = [_ids_actor(m) for m in agent["member"]]
    return out


def _ids_object(obj: dict) -> dict:
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return {"id": obj["id"]}
    if kind in ("Agent", "Group"):
        return _ids_actor(obj)
    if kind == "SubStatement":
        return _ids_statement(obj)
    return obj


def _ids_context(context: dict) -> dict:
    out = dict(context)
    for key in ("instructor", "team"):
        if key in out:
            out[key] = _ids_actor(out[key])
    if "contextActivities" in out:
        out["contextActivities"] = {
            k: [_ids_object(a) for a in (v if isinstance(v, list) else [v])]
            for k, v in out["contextActivities"].items()}
    if "contextAgents" in out:
        out["contextAgents"] = [{**c, "agent": _ids_actor(c["agent"])} for c in out["contextAgents"]]
    if "contextGroups" in out:
        out["contextGroups"] = [{**c, "group": _ids_actor(c["group"])} for c in out["contextGroups"]]
    return out


def _ids_statement(statement: dict) -> dict:
    out = dict(statement)
    out["actor"] = _ids_actor(statement["actor"])
    out["verb"] = {"id": statement["verb"]["id"]}
    out["object"] = _ids_object(statement["object"])
    if "context" in out:
        out["context"] = _ids_context(out["context"])
    if "authority" in out:
        out["authority"] = _ids_actor(out["authority"])
    return out


def _pick_language(mapping: dict, languages: list[str]) -> dict:
    if not mapping:
        return mapping
    lowered = {k.lower(): k for k in mapping}
    for wanted in languages:
        wanted = wanted.lower()
        if wanted == "*":
            break
        if wanted in lowered:
            return {lowered[wanted]: mapping[lowered[wanted]]}
        for key_lower, key in lowered.items():
            if key_lower.split("-")[0] == wanted.split("-")[0]:
                return {key: mapping[key]}
    first = next(iter(mapping))
    return {first: mapping[first]}


def _canonical(value, languages: list[str], parent: str | None = None):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("display", "name", "description") and isinstance(item, dict) and parent != "extensions":
                out[key] = _pick_language(item, languages)
            elif key == "extensions":
                out[key] = item
            else:
                out[key] = _canonical(item, languages, key)
        return out
    if isinstance(value, list):
        return [_canonical(item, languages, parent) for item in value]
    return value


def formatted(statement: dict, fmt: str, languages: list[str]) -> dict:
    if fmt == "ids":
        return _ids_statement(statement)
    if fmt == "canonical":
        return _canonical(statement, languages)
    return statement


def attachment_hashes(statements: list[dict]) -> list[str]:
    hashes = []
    for statement in statements:
        for part in (statement, statement["object"] if statement["object"].get("objectType") == "SubStatement"
                     else {}):
            hashes += [attachment["sha2"] for attachment in part.get("attachments") or ()]
    return list(dict.fromkeys(hashes))


def load_attachments(conn: Connection, hashes: list[str]) -> list:
    if not hashes:
        return []
    return conn.execute(sa.select(t.attachments).where(t.attachments.c.sha2.in_(hashes))).all()


def activity_definition(conn: Connection, activity_id: str) -> dict | None:
    row = conn.execute(sa.select(t.activities.c.definition)
                       .where(t.activities.c.hash == activity_key(activity_id))).first()
    return None if row is None else orjson.loads(row.definition)


