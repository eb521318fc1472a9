"""Events on the bus: an xAPI statement plus the routing facts Kafka carries beside it.

The routing facts are CloudEvents 1.0 attributes in the Kafka binding's binary mode
(`ce_*` headers, the statement itself the data): a consumer can route or filter a record
by service, type or learner without parsing its body, with any CloudEvents SDK. Records
written before that (topics are kept forever) carry `source`, `event-type` and
`schema-version` instead; `routing` reads either generation (docs/events.md, Headers).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import xapi
from shared.errors import Unprocessable

SCHEMA_VERSION = "xapi-1.0.3"

# The first generation of headers: still read (`routing`), no longer written.
HEADER_SOURCE = "source"
HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"

# CloudEvents 1.0, Kafka protocol binding, binary content mode.
CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CE_SUBJECT = "ce_subject"
CE_DATASCHEMA = "ce_dataschema"
CONTENT_TYPE = "content-type"  # the binding maps datacontenttype to this header, not ce_
# ce_type = this prefix (reverse DNS of learnstream.dev, as CloudEvents recommends) +
# the event type; ce_source = a URI reference naming the producing service.
TYPE_PREFIX = "dev.learnstream."
SOURCE_PREFIX = "/learnstream/"
# The JSON Schema of each event type, as docs/schemas/<event type>.json is identified ($id).
SCHEMA_BASE = "https://learnstream.dev/schemas/events/"


class EventType:
    """Every event type on the bus, named `<thing>.<what happened>`.

    One place to look them up; each service's projections register handlers by these.
    """

    # learnstream.enrollment.v1
    PROGRAMME_DEFINED = "programme.defined"
    COHORT_DEFINED = "cohort.defined"
    LEARNER_ENROLLED = "enrolment.registered"
    LEARNER_WITHDREW = "enrolment.withdrawn"
    # learnstream.assessment.v1
    FINAL_TEST_DEFINED = "final-test.defined"
    ATTEMPT_STARTED = "final-test.attempted"
    ATTEMPT_SCORED = "final-test.scored"
    ATTEMPT_PASSED = "final-test.passed"
    ATTEMPT_FAILED = "final-test.failed"
    # learnstream.lrs.v1: any statement an LMS or player posted to the LRS (consumers
    # look at its verb and object)
    LRS_STATEMENT = "lrs.statement"
    # learnstream.certification.v1
    CERTIFICATE_EARNED = "certificate.earned"
    CERTIFICATE_REVOKED = "certificate.revoked"
    # learnstream.accounts.v1 (produced by enrollment's outbox): an account's whole state
    # after a change (shared.accounts)
    ACCOUNT_CHANGED = "account.changed"
    # learnstream.content.v1 (produced by progress's outbox): a cmi5 course imported into
    # the LMS, with the programme modules it stands for; and removed again. Enrollment
    # projects them, so a programme can be defined from, or attached to, a course.
    COURSE_IMPORTED = "course.imported"
    COURSE_REMOVED = "course.removed"


# The type of a dead-letter topic's resolution markers (shared.dead_letters): records
# with no value whose `dead-letter-resolves` header names the dead letter they settle.
DEAD_LETTER_RESOLVED = "dead-letter.resolved"


@dataclass(frozen=True)
class Event:
    """A statement on its way to the outbox."""

    type: str
    statement: dict

    @property
    def key(self) -> str:
        return xapi.learner_key(self.statement["actor"])


@dataclass(frozen=True)
class KeyedEvent:
    """A statement on its way to the outbox, keyed by what its facts must stay in order
    with rather than by its actor: a certificate an operator revoked by its learner, a
    course's import and removal by the course (ce_subject follows the key)."""

    type: str
    statement: dict
    key: str


def ce_type(event_type: str) -> str:
    return TYPE_PREFIX + event_type


def ce_source(service: str) -> str:
    return SOURCE_PREFIX + service


def dataschema(event_type: str) -> str:
    return f"{SCHEMA_BASE}{event_type}.json"


@functools.lru_cache(maxsize=256)  # the relay asks for every record it publishes
def _fixed_headers(source: str, event_type: str) -> tuple[tuple[str, bytes], ...]:
    """The headers every record of one (service, event type) shares."""
    return (
        (CE_SPECVERSION, b"1.0"),
        (CE_SOURCE, ce_source(source).encode()),
        (CE_TYPE, ce_type(event_type).encode()),
        (CE_DATASCHEMA, dataschema(event_type).encode()),
        (CONTENT_TYPE, b"application/json"),
    )


def headers(source: str, event_type: str, statement_id: str, subject: str, time: str) -> list[tuple[str, bytes]]:
    """A record's headers: `statement_id` is ce_id (consumers dedupe by it), `subject` the
    learner key (the record key, a hash: no personal data), `time` when learnstream
    recorded the statement (RFC 3339)."""
    return [*_fixed_headers(source, event_type),
            (CE_ID, statement_id.encode()), (CE_SUBJECT, subject.encode()), (CE_TIME, time.encode())]


def statement_headers(source: str, event_type: str, statement: dict) -> list[tuple[str, bytes]]:
    """`headers` for a statement in hand (tools and tests that publish directly)."""
    return headers(source, event_type, statement["id"], xapi.learner_key(statement["actor"]),
                   statement.get("stored") or xapi.format_timestamp(xapi.utc_now()))


def routing(record_headers) -> tuple[str | None, str | None]:
    """(source service, event type) of a record of either generation of headers: the
    CloudEvents ones first, else the first generation's `source` and `event-type`.
    A `ce_type` outside learnstream's prefix is returned whole: no handler knows it."""
    if not record_headers:
        return _routing(None, None, None, None)
    # Every record of every topic comes here. reversed: the first of a repeated header
    # wins; and a record's few distinct header values are decoded once (_routing's cache).
    raw = dict(reversed(record_headers))
    return _routing(raw.get(CE_SOURCE), raw.get(CE_TYPE), raw.get(HEADER_SOURCE), raw.get(HEADER_EVENT_TYPE))


@functools.lru_cache(maxsize=4096)
def _routing(ce_source, ce_type, source, event_type) -> tuple[str | None, str | None]:
    source_text, type_text = _text(CE_SOURCE, ce_source), _text(CE_TYPE, ce_type)
    if source_text is None and type_text is None:
        return _text(HEADER_SOURCE, source), _text(HEADER_EVENT_TYPE, event_type)
    if source_text is not None and source_text.startswith(SOURCE_PREFIX):
        source_text = source_text[len(SOURCE_PREFIX):]
    if type_text is not None and type_text.startswith(TYPE_PREFIX):
        type_text = type_text[len(TYPE_PREFIX):]
    return source_text, type_text


def header(record_headers, name: str) -> str | None:
    """A header's text; a value that is not UTF-8 makes the record unprocessable."""
    for key, value in record_headers or ():
        if key == name:
            return _text(name, value)
    return None


def _text(name: str, value) -> str | None:
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise Unprocessable(f"header {name!r} is not UTF-8") from None

