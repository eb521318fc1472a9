"""Events on the bus: an xAPI statement plus the routing facts Kafka carries beside it.

Headers carry the source service, the event type and the schema version (docs/architecture.md,
Events), so a consumer can route or filter a record without parsing its body.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import xapi
from shared.errors import Unprocessable

SCHEMA_VERSION = "xapi-1.0.3"

HEADER_SOURCE = "source"
HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"


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


@dataclass(frozen=True)
class Event:
    """A statement on its way to the outbox."""

    type: str
    statement: dict

    @property
    def key(self) -> str:
        return xapi.learner_key(self.statement["actor"])


@functools.lru_cache(maxsize=256)  # the relay asks for every record it publishes
def headers(source: str, event_type: str) -> list[tuple[str, bytes]]:
    return [
        (HEADER_SOURCE, source.encode()),
        (HEADER_EVENT_TYPE, event_type.encode()),
        (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
    ]


def header(record_headers, name: str) -> str | None:
    """A header's text; a value that is not UTF-8 makes the record unprocessable."""
    for key, value in record_headers or ():
        if key == name:
            if not isinstance(value, bytes):
                return value
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise Unprocessable(f"header {name!r} is not UTF-8") from None
    return None

