"""The event contract: docs/asyncapi.yaml passes a real AsyncAPI parser, says what
docs/events.md and the code say, and records of both generations of headers are
projected alike from a real topic."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.progress import tables as progress_tables
from services.progress.service import SERVICE as PROGRESS
from shared import bus, db, events, xapi
from shared.config import SERVICES, Settings
from shared.service import load
from tests.support import contract
from tests.support import statements as s
from tests.support.flows import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PARSER_DIR = REPO / "tests" / "asyncapi"
DOCUMENT = REPO / "docs" / "asyncapi.yaml"
EVENTS_MD = REPO / "docs" / "events.md"


def _install_parser() -> None:
    """`npm ci` from the committed package-lock.json, once per checkout (node_modules is
    not committed); offline after that."""
    pinned = json.loads((PARSER_DIR / "package.json").read_text())["dependencies"]["@asyncapi/parser"]
    installed = PARSER_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == pinned:
        return
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to install the AsyncAPI parser (apt-get install nodejs npm)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PARSER_DIR, check=True,
                   timeout=600)


def parse(document: Path) -> dict:
    _install_parser()
    done = subprocess.run(["node", str(PARSER_DIR / "check.cjs"), str(document)], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def parsed() -> dict:
    return parse(DOCUMENT)


def _errors(result: dict) -> list[dict]:
    return [d for d in result["diagnostics"] if d["severity"] <= 1]  # 0 error, 1 warning; not info or hints


def test_the_asyncapi_document_passes_the_parser(parsed):
    assert _errors(parsed) == []
    assert parsed["channels"], "the parser returned no document"


def test_the_parser_refuses_a_document_that_breaks_the_spec(tmp_path):
    """The check above can fail: a payload schema that is not there and a channel
    without an address are reported."""
    shutil.copytree(REPO / "docs" / "schemas", tmp_path / "schemas")
    text = DOCUMENT.read_text()
    broken = text.replace("$ref: './schemas/enrolment.registered.json'", "$ref: './schemas/no-such.json'", 1)
    broken = broken.replace("    address: learnstream.lrs.v1\n", "    addresss: learnstream.lrs.v1\n", 1)
    assert broken.count("no-such") == 1 and "addresss" in broken
    (tmp_path / "asyncapi.yaml").write_text(broken)
    errors = _errors(parse(tmp_path / "asyncapi.yaml"))
    assert any("no-such.json" in e["message"] for e in errors), errors
    assert any("addresss" in e["message"] or "addresss" in e["path"] for e in errors), errors


def _events_md() -> tuple[dict[str, str], dict[str, dict[str, str]], set[str]]:
    """From docs/events.md: topic -> producer, topic -> {event type: verb IRI}, and the
    headers of its Headers table."""
    text = EVENTS_MD.read_text()
    topics = dict(re.findall(r"^\| `(learnstream\.[a-z<>]+\.(?:deadletter\.)?v1)` \| ([^|]+?) \|", text, re.M))
    sections: dict[str, dict[str, str]] = {}
    for topic, body in re.findall(r"^## .*?: `(learnstream\.[a-z]+\.v1)`\n(.*?)(?=^## |\Z)", text, re.M | re.S):
        rows = re.findall(r"^\| `([a-z.-]+)` \| [^|]* \| ([^|]+) \|", body, re.M)
        sections[topic] = {kind: verb.strip() for kind, verb in rows}
    headers_table = text.split("## Headers", 1)[1].split("\n## ", 1)[0]
    headers = set(re.findall(r"^\| `([a-z_-]+)` \|", headers_table, re.M))
    return topics, sections, headers


def _verb(cell: str) -> str | None:
    """The verb IRI of an events.md verb cell (`…/` is learnstream's xAPI IRI); None for `any`."""
    found = re.search(r"`([^`]+)`", cell)
    if found is None:
        return None
    return found.group(1).replace("…/", xapi.PROJECT_IRI + "/")


def _schema_verb(payload: dict) -> str | None:
    for part in payload["schema"]["allOf"]:
        const = part.get("properties", {}).get("verb", {}).get("properties", {}).get("id", {}).get("const")
        if const:
            return const
    return None


def test_events_md_and_the_asyncapi_document_agree(parsed):
    topics, sections, headers = _events_md()
    channels = parsed["channels"]
    event_channels = {c["address"]: c for c in channels.values() if not c["address"].endswith(".deadletter.v1")}
    assert set(event_channels) == set(sections) == {t for t in topics if "<" not in t}
    for address, channel in event_channels.items():
        documented = {kind: _verb(verb) for kind, verb in sections[address].items()}
        declared = {m["name"]: _schema_verb(m["payload"]) for m in channel["messages"]}
        assert declared == documented, address
    # Dead letters: one topic per consuming service, as events.md's pattern row says.
    consumers = {service for service in SERVICES if load(service).projection is not None}
    dead = {c["address"] for c in channels.values() if c["address"].endswith(".deadletter.v1")}
    assert "learnstream.<service>.deadletter.v1" in topics
    assert dead == {f"learnstream.{service}.deadletter.v1" for service in consumers}
    cloud_events = next(iter(event_channels.values()))["messages"][0]["headers"]["allOf"][0]
    assert set(cloud_events["required"]) == headers


def test_the_asyncapi_document_says_what_the_code_does(parsed):
    declared_types = {v for k, v in vars(events.EventType).items() if k.isupper()}
    settings = Settings(service="progress", database_url="")
    seen = set()
    for channel in parsed["channels"].values():
        kafka = channel["kafka"]
        assert kafka["topic"] == channel["address"]
        assert kafka["partitions"] == settings.topic_partitions
        assert {k: str(v) for k, v in kafka["topicConfiguration"].items() if k in bus.TOPIC_CONFIG} == bus.TOPIC_CONFIG
        for message in channel["messages"]:
            if channel["address"].endswith(".deadletter.v1"):
                continue
            name = message["name"]
            seen.add(name)
            assert message["payload"]["schema"]["$id"] == events.dataschema(name)
            specific = message["headers"]["allOf"][1]["properties"]
            assert specific["ce_type"]["const"] == events.ce_type(name)
            assert specific["ce_dataschema"]["const"] == events.dataschema(name)
            if channel["address"] == "learnstream.content.v1":  # a course's facts, keyed by the course
                assert message["key"]["format"] == "uuid"
            else:
                assert message["key"]["pattern"] == "^[0-9a-f]{32}$"
    assert seen == declared_types == set(contract.validators())


def test_records_of_both_generations_of_headers_are_projected_alike(deployment):
    """Topics are kept forever: the records written before the CloudEvents headers must
    still be read. One topic, old and new records interleaved, one real projection."""
    settings = deployment.settings("progress")
    bus.ensure_topics(settings, PROGRESS.topics(settings))
    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    cohort = "33333333-3333-4333-8333-333333333333"
    facts = [s.enrolled(n, s.new_id(), cohort, now, now + timedelta(days=10)) for n in range(6)]
    records = []
    for n, (kind, stmt) in enumerate(facts):
        key = xapi.learner_key(stmt["actor"])
        headers = (s.first_generation_headers(contract.TEST_SOURCE, kind) if n % 2
                   else events.statement_headers(contract.TEST_SOURCE, kind, stmt))
        records.append((settings.topic("enrollment"), key.encode(), xapi.encode(stmt), headers))
    publisher = bus.Publisher(settings, role="test")
    try:
        publisher.publish(records)
    finally:
        publisher.close()
    deployment.start_worker("progress")
    engine = db.create_engine(settings.database_url)
    try:
        def projected():
            with db.reading(engine) as conn:
                return set(conn.scalars(sa.select(progress_tables.learner_enrolments.c.registration)))

        eventually(lambda: len(projected()) == len(facts), 60, message="every enrolment projected")
        assert projected() == {stmt["context"]["registration"] for _, stmt in facts}
    finally:
        engine.dispose()
    assert bus.read_topics(settings, [settings.dead_letter_topic]) == []
