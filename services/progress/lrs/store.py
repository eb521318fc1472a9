"""Storing and voiding statements: the LRS's write side. No Flask here.

`prepare` completes client statements (the properties shared.xapi.SET_BY_LRS names);
`rows_for` turns them into rows before any transaction begins; `store` writes them,
their index rows, activity definitions, voiding marks and outbox records (through
shared.outbox, as every service stages its statements) in the caller's transaction;
`store_requests` is the group commit's writer (several requests, one transaction) and
`store_in_chunks` a bulk request's (transactions of CHUNK). Reading: queries.py.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.progress.lrs import tables as t
from services.progress.lrs.auth import AUTHORITY_HOME
from services.progress.lrs.keys import activity_key, agent_key, digest
from services.progress.lrs.validation import V2, Invalid, comparable, new_id
from shared import db, outbox, xapi
from shared.blocking import run_blocking
from shared.events import EventType

# Statements per write transaction: the group commit's limit for a group, and the size of
# each transaction a bulk request (more than this in one request) is committed in.
CHUNK = 1_000
# Statements a bulk request's CPU-bound steps handle between two pauses (~10 ms of CPU).
SLICE = 100
_VOIDED = xapi.VOIDED.id  # read for every statement stored


class Conflict(Exception):
    """A statement id already stored with different content (HTTP 409)."""


class Forbidden(Exception):
    """A voiding statement this credential may not send (HTTP 403)."""


@dataclass(frozen=True)
class VoidRight:
    """Which statements a request's voiding statements may target: those whose authority
    is the request's own (`authority_key`, its agent_key), or any a client stored (`any`:
    scopes all, statements/void/any). Statements learnstream's services published (stored
    from their topics, with their own authority) are never voidable here: the service
    that made one is the only one that can take it back, through its own API."""

    authority_key: str
    any: bool


def prepare(statement: dict, *, authority: dict, version: str, stored: datetime) -> dict:
    """The statement as the LRS stores it: the client's content plus what the LRS sets
    (shared.xapi.SET_BY_LRS: stored and authority always, the rest where missing)."""
    stored_text = xapi.format_timestamp(stored)
    statement["id"] = statement["id"].lower() if "id" in statement else new_id()
    statement.pop("objectType", None)
    _arrays_of_context_activities(statement)
    if statement["object"].get("objectType") == "SubStatement":
        _arrays_of_context_activities(statement["object"])
    statement["stored"] = stored_text
    statement.setdefault("timestamp", stored_text)
    statement["authority"] = authority
    statement.setdefault("version", "2.0.0" if version == V2 else "1.0.0")
    return statement


def _arrays_of_context_activities(statement: dict) -> None:
    """An LRS returns each context activity list as an array, even when sent as one object."""
    activities = (statement.get("context") or {}).get("contextActivities")
    if activities:
        for key, value in activities.items():
            if isinstance(value, dict):
                activities[key] = [value]


def _same(old: dict, new: dict) -> bool:
    """Whether a statement sent again is the one stored (ignoring what the LRS sets)."""
    lrs_timestamp = new.get("timestamp") == new.get("stored") or old.get("timestamp") == old.get("stored")
    return (comparable(old, timestamp_set_by_lrs=lrs_timestamp) == comparable(new, timestamp_set_by_lrs=lrs_timestamp)
            and old.get("attachments") == new.get("attachments"))


def _context_activities(context: dict) -> list[dict]:
    found = []
    for items in (context.get("contextActivities") or {}).values():
        found += items if isinstance(items, list) else [items]
    return found


def _context_agents(context: dict) -> list[dict]:
    found = [context[k] for k in ("instructor", "team") if k in context]
    found += [item["agent"] for item in context.get("contextAgents") or () if "agent" in item]
    found += [item["group"] for item in context.get("contextGroups") or () if "group" in item]
    return found


_IFI_KEYS = frozenset(("mbox", "mbox_sha1sum", "openid", "account"))


def _agents_and_members(agent: dict) -> list[dict]:
    found = [agent] if not _IFI_KEYS.isdisjoint(agent) else []
    return found + list(agent.get("member") or ())


def index_keys_of(statement: dict) -> list[tuple[str, str]]:
    """Which agents and activities a statement mentions (for the agent/activity filters)."""
    keys: set[tuple[str, str]] = set()
    obj = statement["object"]
    kind = obj.get("objectType", "Activity")

    def add_agent(agent, direct):
        for found in _agents_and_members(agent):
            keys.add(("A" if direct else "a", agent_key(found)))

    add_agent(statement["actor"], True)
    if kind in ("Agent", "Group"):
        add_agent(obj, True)
    elif kind == "Activity":
        keys.add(("C", activity_key(obj["id"])))
    for part in (statement, obj if kind == "SubStatement" else {}):
        context = part.get("context") or {}
        for act in _context_activities(context):
            keys.add(("c", activity_key(act["id"])))
        for agent in _context_agents(context):
            add_agent(agent, False)
    if "authority" in statement:
        add_agent(statement["authority"], False)
        keys.add(("U", agent_key(statement["authority"])))
    if kind == "SubStatement":
        add_agent(obj["actor"], False)
        inner = obj["object"]
        if inner.get("objectType", "Activity") == "Activity":
            keys.add(("c", activity_key(inner["id"])))
        elif inner.get("objectType") in ("Agent", "Group"):
            add_agent(inner, False)
    # A direct mention ("A", "C") is not repeated as a related one: related filters read both.
    keys -= {(kind.lower(), key) for kind, key in keys if kind in ("A", "C")}
    return sorted(keys)


def _activities_in(statement: dict) -> list[dict]:
    obj = statement["object"]
    found = []
    if obj.get("objectType", "Activity") == "Activity":
        found.append(obj)
    found += _context_activities(statement.get("context") or {})
    if obj.get("objectType") == "SubStatement":
        found += _activities_in(obj)
    return [a for a in found if a.get("definition")]


def _merge_definition(old: dict, new: dict) -> dict:
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key in ("name", "description"):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


# Per process: the definitions this process last merged, by activity hash. A statement
# repeating a definition already merged (the common case: a player sends the same
# activity for every learner) then costs no database round trip.
_merged: dict[tuple[str, str], bytes] = {}
_MERGED_MAX = 50_000


def _update_activities(conn: Connection, statements: list[dict]) -> None:
    definitions: dict[str, tuple[str, dict]] = {}
    for statement in statements:
        for act in _activities_in(statement):
            key = activity_key(act["id"])
            old = definitions.get(key, (act["id"], {}))[1]
            definitions[key] = (act["id"], _merge_definition(old, act["definition"]))
    database = str(conn.engine.url)
    definitions = {key: value for key, value in definitions.items()
                   if _merged.get((database, key)) != orjson.dumps(value[1], option=orjson.OPT_SORT_KEYS)}
    if not definitions:
        return
    existing = dict(conn.execute(sa.select(t.activities.c.hash, t.activities.c.definition)
                                 .where(t.activities.c.hash.in_(list(definitions)))).all())
    rows = []
    for key, (activity_id, definition) in definitions.items():
        if key in existing:
            definition = _merge_definition(orjson.loads(existing[key]), definition)
        rows.append({"hash": key, "id": activity_id, "definition": orjson.dumps(definition)})
    db.upsert(conn, t.activities, sorted(rows, key=lambda r: r["hash"]), ["hash"])
    merged = {(database, key): orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)
              for key, (_, definition) in definitions.items()}

    def remember(_conn):  # only once committed: a rolled-back merge must be tried again
        if len(_merged) > _MERGED_MAX:
            _merged.clear()
        _merged.update(merged)
    sa.event.listen(conn, "commit", remember, once=True)


@dataclass
class Batch:
    """Statements turned into rows before any transaction begins, so that the write lock
    (SQLite) or row locks are held only for the inserts themselves."""

    statements: list[dict]
    rows: list[dict]
    index_keys: dict[str, list[tuple[str, str]]]
    outbox_rows: dict[str, tuple]
    void_right: VoidRight | None = None  # None: statements from the bus, trusted

    def part(self, start: int, stop: int) -> Batch:
        statements = self.statements[start:stop]
        ids = [s["id"] for s in statements]
        return Batch(statements, self.rows[start:stop], {i: self.index_keys[i] for i in ids},
                     {i: self.outbox_rows[i] for i in ids if i in self.outbox_rows}, self.void_right)


def paced(items: list, pause=None):
    """The items, with `pause()` called after every SLICE of them (if a pause is given)."""
    if pause is None:
        yield from items
        return
    for start in range(0, len(items), SLICE):
        yield from items[start:start + SLICE]
        pause()


def rows_for(statements: list[dict], *, topic: str | None, void_right: VoidRight | None = None,
             pause=None) -> Batch:
    """`pause()`, if given, between slices of SLICE statements (shared.blocking.cooperate)."""
    ids = [s["id"] for s in statements]
    if len(set(ids)) != len(ids):
        raise Invalid("the same statement id appears twice in one request")
    rows, index_keys, outbox_rows = [], {}, {}
    for statement in paced(statements, pause):
        obj = statement["object"]
        payload = orjson.dumps(statement)
        rows.append({
            "id": statement["id"], "stored": xapi.parse_timestamp(statement["stored"]),
            "verb_id": statement["verb"]["id"], "verb_hash": digest(statement["verb"]["id"]),
            "registration": (statement.get("context") or {}).get("registration", "").lower() or None,
            "object_ref": obj["id"].lower() if obj.get("objectType") == "StatementRef" else None,
            "voided": False, "payload": payload,
        })
        index_keys[statement["id"]] = index_keys_of(statement)
        if topic is not None:  # a record for shared.outbox.append_encoded: (topic, key, event type, payload)
            outbox_rows[statement["id"]] = (topic, xapi.learner_key(statement["actor"]),
                                            str(EventType.LRS_STATEMENT), payload)
    return Batch(statements, rows, index_keys, outbox_rows, void_right)


def check_voiding(conn: Connection, batch: Batch) -> None:
    """Raise Forbidden unless the batch's VoidRight allows every voiding statement in it;
    in the transaction that will store the batch, before anything of it is written.
    A target the batch itself brings counts as the request's own only if it is not
    stored yet: sending another key's statement again (accepted as the same) and voiding
    it in one request must not pass. A target not stored at all is accepted, as xAPI
    asks (the voiding statement is stored; an LRS POST arriving later is not voided)."""
    right = batch.void_right
    targets = {s["object"]["id"].lower() for s in batch.statements if s["verb"]["id"] == _VOIDED}
    if right is None or not targets:
        return
    stored = [row for chunk in db.chunks(sorted(targets)) for row in conn.execute(
        sa.select(t.statements.c.id, t.statements.c.payload).where(db.among(conn, t.statements.c.id, chunk)))]
    for target, payload in stored:
        authority = orjson.loads(payload).get("authority") or {}
        if (authority.get("account") or {}).get("homePage") != AUTHORITY_HOME:
            raise Forbidden(f"statement {target} was published by a learnstream service: only that service "
                            f"can take it back, not a voiding statement")
        if not right.any and agent_key(authority) != right.authority_key:
            raise Forbidden(f"statement {target} was stored by another credential: this one may void only its "
                            f"own statements (scope statements/void/any voids any)")


def store(conn: Connection, statements: list[dict] | Batch, *, outbox_table: sa.Table | None, topic: str | None,
          from_bus: bool = False) -> list[str]:
    """Write prepared statements; return their ids. Raises Conflict (409) on an id stored
    with other content. Statements already stored unchanged are accepted and skipped.
    `from_bus`: statements other services published (no outbox, duplicates ignored)."""
    batch = statements if isinstance(statements, Batch) else rows_for(
        statements, topic=None if from_bus or outbox_table is None else topic)
    statements = batch.statements
    ids = [s["id"] for s in statements]
    # One round trip in the common case: insert, skipping ids already stored; only those
    # skipped are read back and compared (the same content is accepted, other content is 409).
    inserted = dict(db.insert_new_returning(conn, t.statements, batch.rows, "id", ["id", "seq"]))
    if len(inserted) < len(batch.rows) and not from_bus:
        _check_same(conn, [s for s in statements if s["id"] not in inserted])
    fresh = [s for s in statements if s["id"] in inserted]
    if not fresh:
        return ids
    db.insert_many_fast(conn, t.statement_index, ["kind", "hash", "statement_seq"], [
        (kind, key, inserted[s["id"]]) for s in fresh for kind, key in batch.index_keys[s["id"]]])
    _apply_voiding(conn, fresh, arrivals_too=from_bus)
    _update_activities(conn, fresh)
    if outbox_table is not None and not from_bus:
        outbox.append_encoded(conn, outbox_table, [batch.outbox_rows[s["id"]] for s in fresh])
    return ids


def stored_ids(conn: Connection, ids: list[str]) -> set[str]:
    """Those of these (lower-case) statement ids the LRS holds."""
    return {sid for chunk in db.chunks(ids) for sid in conn.scalars(
        sa.select(t.statements.c.id).where(db.among(conn, t.statements.c.id, chunk)))}


def _check_same(conn: Connection, statements: list[dict]) -> None:
    """Conflict (409) if any of these statements' ids is stored with other content."""
    by_id = {s["id"]: s for s in statements}
    for chunk in db.chunks(list(by_id)):
        stored = conn.execute(sa.select(t.statements.c.id, t.statements.c.payload)
                              .where(db.among(conn, t.statements.c.id, chunk)))
        for sid, payload in stored:
            if not _same(orjson.loads(payload), by_id[sid]):
                raise Conflict(f"statement {sid} already exists with other content")


def store_in_chunks(engine, batch: Batch, parts: dict[str, tuple[str, bytes]], *, outbox_table: sa.Table,
                    topic: str) -> list[str]:
    """A bulk request's statements, CHUNK to a transaction of its own, outside the group
    commit: one 50,000-statement transaction held SQLite's write lock (and the process's
    group committer) for seconds while every other client's POST waited (issue 12).

    xAPI makes a batch all or nothing for what a client can get wrong, so everything that
    can refuse it is decided for the whole batch before the first chunk commits: the
    caller has validated every statement; here the ids already stored with other
    content (409) and the voiding rights (403) are checked. The request answers only
    once every chunk is in. What remains possible midway is what no check can rule out:
    the process dies or the database goes away, or a concurrent request stores one of
    the ids with other content between the check and its chunk (409). Then the first
    chunks stay stored and the client gets no 200. Sending the same request again is
    safe for statements that carry their ids (a statement stored unchanged is accepted
    and skipped); statements without an id get new ones each time and would be stored
    twice, so a bulk client should set ids (as xAPI recommends)."""
    run_blocking(_check_whole, engine, batch)
    for start in range(0, len(batch.rows), CHUNK):
        run_blocking(_commit_chunk, engine, batch.part(start, start + CHUNK), parts if start == 0 else {},
                     outbox_table, topic)
        # The write lock is free now: let the writers queued on it (flock wakes them in
        # no order) take it before this request's next chunk does.
        time.sleep(0.001)
    return [s["id"] for s in batch.statements]


def _check_whole(engine, batch: Batch) -> None:
    with db.reading(engine) as conn:
        _check_same(conn, batch.statements)
        check_voiding(conn, batch)


def _commit_chunk(engine, part: Batch, parts: dict[str, tuple[str, bytes]], outbox_table: sa.Table,
                  topic: str) -> None:
    with engine.begin() as conn:
        if parts:
            save_attachments(conn, [(sha2, ctype, content) for sha2, (ctype, content) in parts.items()])
        check_voiding(conn, part)  # again, in the transaction: a target stored since the check
        store(conn, part, outbox_table=outbox_table, topic=topic)


def store_requests(conn: Connection, requests: Sequence[tuple[Batch, dict[str, tuple[str, bytes]]]], *,
                   outbox_table: sa.Table, topic: str) -> list[list[str]]:
    """Several requests' statements and attachments in one transaction (group commit:
    shared.group_commit); the ids each request stored. Raises as `store` does, for the
    group as a whole; the committer then retries each request alone."""
    for batch, _ in requests:
        check_voiding(conn, batch)
    parts = {sha2: part for _, request_parts in requests for sha2, part in request_parts.items()}
    if parts:
        save_attachments(conn, [(sha2, ctype, content) for sha2, (ctype, content) in parts.items()])
    if len(requests) == 1:
        return [store(conn, requests[0][0], outbox_table=outbox_table, topic=topic)]
    merged = Batch([], [], {}, {})
    for batch, _ in requests:
        merged.statements += batch.statements
        merged.rows += batch.rows
        merged.index_keys.update(batch.index_keys)
        merged.outbox_rows.update(batch.outbox_rows)
    if len(merged.index_keys) != len(merged.rows):
        raise Invalid("the same statement id in two concurrent requests")  # each is retried alone
    store(conn, merged, outbox_table=outbox_table, topic=topic)
    return [[s["id"] for s in batch.statements] for batch, _ in requests]


def _apply_voiding(conn: Connection, fresh: list[dict], arrivals_too: bool) -> None:
    targets = [s["object"]["id"].lower() for s in fresh if s["verb"]["id"] == _VOIDED]
    if targets:
        # A voiding statement never voids another voiding statement.
        conn.execute(t.statements.update()
                     .where(db.among(conn, t.statements.c.id, targets), t.statements.c.verb_id != _VOIDED)
                     .values(voided=True))
    # A statement arriving after the statement voiding it (possible when consuming topics,
    # whose partitions interleave freely; a client sends the target first).
    plain = [s["id"] for s in fresh if s["verb"]["id"] != _VOIDED]
    if plain and arrivals_too:
        voiders = sa.select(t.statements.c.object_ref).where(
            db.among(conn, t.statements.c.object_ref, plain), t.statements.c.verb_id == _VOIDED)
        conn.execute(t.statements.update().where(t.statements.c.id.in_(voiders)).values(voided=True))


def save_attachments(conn: Connection, parts: list[tuple[str, str, bytes]]) -> None:
    rows = [{"sha2": sha2, "content_type": ctype, "content": content} for sha2, ctype, content in parts]
    db.insert_ignoring_duplicates(conn, t.attachments, rows, ["sha2"])
