"""The event contract as the tests enforce it: every record on a deployment's topics
carries the CloudEvents headers of its statement and a value its JSON Schema
(docs/schemas, referenced from docs/asyncapi.yaml) accepts."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from jsonschema import Draft7Validator

from shared import bus, events, xapi
from shared.bus import Record
from shared.config import SERVICES

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schemas"
# The source tests name when they put records on the bus themselves: stand-ins for other
# services' facts, often minimal on purpose, so not what learnstream produces. The check
# is for records with a learnstream service as their source.
TEST_SOURCE = "test"


def schema_files() -> dict[str, dict]:
    """Every schema in docs/schemas by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(SCHEMAS.glob("*.json"))}


def _inlined(schemas: dict[str, dict]) -> dict[str, dict]:
    """Each schema with its references replaced by what they point to: a validator that
    follows no reference checks a statement about 3 times faster, and the check runs on
    every record of every integration test. (Draft 07 ignores a $ref's siblings, so
    replacing the whole node keeps the meaning; the schemas have no cycles.)"""
    by_id = {schema["$id"]: schema for schema in schemas.values()}

    def target(ref: str, base: str) -> dict:
        document, _, pointer = ref.partition("#")
        node = by_id[base.rsplit("/", 1)[0] + "/" + document] if document else by_id[base]
        for part in filter(None, pointer.split("/")):
            node = node[part]
        return node

    def inline(node, base: str):
        if isinstance(node, dict):
            if "$ref" in node:
                ref = node["$ref"]
                document = ref.partition("#")[0]
                new_base = base.rsplit("/", 1)[0] + "/" + document if document else base
                return inline(target(ref, base), new_base)
            return {k: inline(v, base) for k, v in node.items() if k not in ("$schema", "definitions")}
        if isinstance(node, list):
            return [inline(v, base) for v in node]
        return node

    return {name: inline(schema, schema["$id"]) for name, schema in schemas.items()}


@functools.cache
def validators() -> dict[str, Draft7Validator]:
    """A validator per event type, built once per test session from docs/schemas."""
    return {s["x-event-type"]: Draft7Validator(s) for s in _inlined(schema_files()).values() if "x-event-type" in s}


def problems(record: Record) -> list[str]:
    """What is wrong with one record of a learnstream topic (not a dead-letter topic)."""
    where = f"{record.topic}@{record.partition}:{record.offset}"
    source, event_type = events.routing(record.headers)
    if source not in SERVICES:
        return [f"{where}: source {source!r} is not a learnstream service"]
    validator = validators().get(event_type)
    if validator is None:
        return [f"{where}: no schema for event type {event_type!r}"]
    statement = json.loads(record.value)
    found = [] if validator.is_valid(statement) else [  # is_valid stops at the first error: cheaper
        f"{where} ({event_type}): {error.json_path}: {error.message}" for error in validator.iter_errors(statement)]
    if events.header(record.headers, events.CE_SPECVERSION) is None:
        return found  # written before the CloudEvents headers: only the value to check
    expected = dict(events.headers(source, event_type, statement["id"],
                                   xapi.learner_key(statement["actor"]), "?"))
    got = dict(record.headers)
    for name, value in expected.items():
        # ce_subject is the record key, the learner's even when the actor is not (a revocation).
        if name not in (events.CE_TIME, events.CE_SUBJECT) and got.get(name) != value:
            found.append(f"{where}: header {name} is {got.get(name)!r}, expected {value!r}")
    if record.key is None or got.get(events.CE_SUBJECT) != record.key:
        found.append(f"{where}: ce_subject {got.get(events.CE_SUBJECT)!r} is not the record key {record.key!r}")
    try:
        xapi.parse_timestamp(got.get(events.CE_TIME, b"").decode())
    except ValueError:
        found.append(f"{where}: ce_time {got.get(events.CE_TIME)!r} is not a timestamp")
    return found


def check_topics(settings, prefix: str) -> int:
    """Check every record on the topics under `prefix` but the dead-letter ones (whose
    records are there for breaking the contract); raise AssertionError listing the first
    problems. Returns the number of records checked."""
    admin_client = bus.consumer(settings, group_id=None)
    try:
        topics = [t for t in admin_client.list_topics(timeout=10).topics
                  if t.startswith(prefix) and not t.endswith(".deadletter.v1")]
    finally:
        admin_client.close()
    records = [r for r in bus.read_topics(settings, topics) if r.value is not None] if topics else []
    records = [r for r in records if events.routing(r.headers)[0] != TEST_SOURCE]
    found = [problem for record in records for problem in problems(record)]
    assert not found, f"{len(found)} contract problems in {len(records)} records, e.g.:\n" + "\n".join(found[:10])
    return len(records)
