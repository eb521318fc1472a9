"""The record headers: CloudEvents (binary mode) written, both generations read."""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest

from shared import events, xapi
from shared.bus import Record
from shared.config import Settings
from shared.consumer import parse
from shared.errors import Unprocessable
from shared.relay import Relay
from tests.support import statements as s

AT = datetime(2026, 11, 20, 9, 30, 15, 123000, tzinfo=UTC)


def _enrolment():
    return s.enrolled(1, s.new_id(), "22222222-2222-4222-8222-222222222222", AT, AT)


def test_headers_are_cloudevents_binary_mode():
    kind, stmt = _enrolment()
    got = dict(events.statement_headers("enrollment", kind, stmt))
    assert got == {
        "ce_specversion": b"1.0",
        "ce_id": stmt["id"].encode(),
        "ce_source": b"/learnstream/enrollment",
        "ce_type": b"dev.learnstream.enrolment.registered",
        "ce_time": stmt["stored"].encode(),
        "ce_subject": xapi.learner_key(stmt["actor"]).encode(),
        "ce_dataschema": b"https://learnstream.dev/schemas/events/enrolment.registered.json",
        "content-type": b"application/json",
    }


def _record(headers, stmt) -> Record:
    return Record("t", 0, 0, xapi.learner_key(stmt["actor"]).encode(), xapi.encode(stmt), headers)


def test_both_generations_parse_to_the_same_event():
    kind, stmt = _enrolment()
    new = parse(_record(events.statement_headers("enrollment", kind, stmt), stmt))
    old = parse(_record(s.first_generation_headers("enrollment", kind), stmt))
    assert new.error is None and old.error is None
    assert new.event_type == old.event_type == kind
    assert new.statement == old.statement
    assert events.routing(new.record.headers) == events.routing(old.record.headers) == ("enrollment", kind)


def test_cloudevents_headers_win_over_first_generation_ones():
    kind, stmt = _enrolment()
    both = s.first_generation_headers("assessment", "final-test.passed") + events.statement_headers(
        "enrollment", kind, stmt)
    assert events.routing(both) == ("enrollment", kind)


def test_a_foreign_ce_type_is_kept_whole_and_projected_by_no_handler():
    assert events.routing([("ce_source", b"/other"), ("ce_type", b"com.example.thing")]) == (
        "/other", "com.example.thing")


@pytest.mark.parametrize("headers", [[], [("ce_type", b"dev.learnstream.enrolment.registered")],
                                     [("event-type", b"enrolment.registered")]])
def test_a_record_that_names_no_source_is_unparseable(headers):
    _, stmt = _enrolment()
    parsed = parse(_record(headers, stmt))
    assert parsed.error and "no source header" in parsed.error


def test_a_ce_header_not_utf8_is_unprocessable():
    with pytest.raises(Unprocessable):
        events.routing([("ce_source", b"/learnstream/x"), ("ce_type", b"\xff")])


def test_statement_id_takes_the_top_level_id_fast_or_parsed():
    stmt = _enrolment()[1]
    assert xapi.statement_id(xapi.encode(stmt)) == stmt["id"]
    # The LRS stores statements in the order clients sent them: the id may come last,
    # after objects that have ids of their own.
    reordered = {k: v for k, v in stmt.items() if k != "id"} | {"id": stmt["id"]}
    assert xapi.statement_id(orjson.dumps(reordered)) == stmt["id"]
    # A top-level id that is not 36 characters is not mistaken for a prefix of one.
    odd = orjson.dumps({"id": stmt["id"] + "-tail", "actor": {}})
    assert xapi.statement_id(odd) == stmt["id"] + "-tail"


def test_the_relay_gives_each_row_its_own_id_subject_and_time():
    rows = []
    for n, created in enumerate([AT, AT, datetime(2026, 11, 21, tzinfo=UTC)]):
        stmt = s.enrolled(n, s.new_id(), "22222222-2222-4222-8222-222222222222", AT, AT)[1]
        payload = xapi.encode(stmt) if n else orjson.dumps(dict(reversed(list(stmt.items()))))
        rows.append(SimpleNamespace(id=n, topic="learnstream.enrollment.v1", key=xapi.learner_key(stmt["actor"]),
                                    event_type="enrolment.registered", payload=payload, created_at=created,
                                    statement_id=stmt["id"]))
    relay = Relay(Settings(service="enrollment", database_url="sqlite://"), engine=None, outbox=None)
    records = relay._records(rows)
    for row, (topic, key, value, headers) in zip(rows, records, strict=True):
        got = dict(headers)
        assert (topic, key, value) == (row.topic, row.key.encode(), row.payload)
        assert got["ce_id"].decode() == row.statement_id
        assert got["ce_subject"] == key
        assert got["ce_time"].decode() == xapi.format_timestamp(row.created_at)
        assert got["ce_type"] == b"dev.learnstream.enrolment.registered"
    assert [dict(r[3])["ce_time"] for r in records] == [
        b"2026-11-20T09:30:15.123Z", b"2026-11-20T09:30:15.123Z", b"2026-11-21T00:00:00.000Z"]
