"""Statements as the other services and an LMS put them on the bus, for read-model tests."""
from __future__ import annotations

import uuid
from datetime import datetime

from shared import events, xapi
from shared.bus import Record

AUTHORITY = xapi.service_agent("test")
PROGRAMME_ID = "11111111-1111-4111-8111-111111111111"
MODULES = [f"https://content.test/m{i}" for i in range(1, 4)]
FINAL_TEST = "https://content.test/final"

# What the consumer runner reads from Kafka, minus Kafka.


def programme_activity(cmi5_course: str | None = None) -> dict:
    return xapi.activity("https://learnstream.test/programmes/DSK", name="Digital skills",
                         type_=xapi.ACTIVITY_TYPE_PROGRAMME, extensions={xapi.EXT_PROGRAMME: {
                             "id": PROGRAMME_ID, "code": "DSK", "required_modules": MODULES,
                             "final_test": FINAL_TEST, "window_days": 10,
                             **({"cmi5_course": cmi5_course} if cmi5_course else {})}})


def programme_defined(at: datetime, cmi5_course: str | None = None) -> tuple[str, dict]:
    return events.EventType.PROGRAMME_DEFINED, xapi.statement(
        xapi.operator_agent("ops"), xapi.DEFINED, programme_activity(cmi5_course), authority=AUTHORITY, timestamp=at)


def cohort_activity(cohort_id: str, agency: str = "Revenue agency", issued: datetime | None = None) -> dict:
    return xapi.activity(f"https://learnstream.test/cohorts/{cohort_id}", name=f"Cohort {cohort_id[:4]}",
                         type_=xapi.ACTIVITY_TYPE_COHORT, extensions={xapi.EXT_COHORT: {
                             "id": cohort_id, "programme_id": PROGRAMME_ID, "agency": agency, "province": "North",
                             "wave": 1, "accounts_issued_at": xapi.format_timestamp(issued or datetime(2026, 11, 2))}})


def learner(n: int) -> dict:
    return xapi.agent(name=f"Learner {n}", email=f"learner{n}@example.org")


def account_learner(n: int) -> dict:
    """A learner identified by an account, as cmi5 asks (9.2.0.0-2)."""
    return xapi.agent(name=f"Learner {n}", account_home_page="https://accounts.example.org",
                      account_name=f"learner{n}")


def enrolled(n: int, registration: str, cohort_id: str, at: datetime, deadline: datetime,
             agency: str = "Revenue agency", issued: datetime | None = None,
             actor: dict | None = None, cmi5_course: str | None = None) -> tuple[str, dict]:
    programme = programme_activity(cmi5_course)  # as enrollment tells it: the course delivering it too
    return events.EventType.LEARNER_ENROLLED, xapi.statement(
        actor or learner(n), xapi.REGISTERED, programme, authority=AUTHORITY, registration=registration,
        parent=programme, grouping=cohort_activity(cohort_id, agency, issued),
        context_extensions={xapi.EXT_DEADLINE: xapi.format_timestamp(deadline), xapi.EXT_ORGANISATION: "Unit 1"},
        timestamp=at)


def withdrew(n: int, registration: str, cohort_id: str, at: datetime, deadline: datetime) -> tuple[str, dict]:
    return events.EventType.LEARNER_WITHDREW, xapi.statement(
        learner(n), xapi.WITHDREW, programme_activity(), authority=AUTHORITY, registration=registration,
        parent=programme_activity(), grouping=cohort_activity(cohort_id),
        context_extensions={xapi.EXT_DEADLINE: xapi.format_timestamp(deadline)}, timestamp=at)


def completed(n: int, module: str, at: datetime, registration: str | None = None,
              verb: xapi.Verb = xapi.COMPLETED) -> tuple[str, dict]:
    """What a player posts to the LRS: often without a registration."""
    return events.EventType.LRS_STATEMENT, xapi.statement(
        learner(n), verb, xapi.activity(module), authority=AUTHORITY, registration=registration,
        result={"completion": True, "duration": "PT10M"}, timestamp=at)


def final_test(n: int, success: bool, score: float, at: datetime, registration: str | None = None) -> tuple[str, dict]:
    verb, kind = (xapi.PASSED, events.EventType.ATTEMPT_PASSED) if success else (xapi.FAILED,
                                                                                 events.EventType.ATTEMPT_FAILED)
    return kind, xapi.statement(learner(n), verb, xapi.activity(FINAL_TEST), authority=AUTHORITY,
                                registration=registration, result={"success": success, "score": {"scaled": score}},
                                timestamp=at)


def certificate(n: int, number: str, at: datetime, revoked: bool = False) -> tuple[str, dict]:
    obj = xapi.activity(f"https://learnstream.test/certificates/{number}", extensions={xapi.EXT_CERTIFICATE: {
        "id": number, "number": number, "programme_id": PROGRAMME_ID, "issued_at": xapi.format_timestamp(at)}})
    if revoked:
        return events.EventType.CERTIFICATE_REVOKED, xapi.statement(
            xapi.operator_agent("ops"), xapi.REVOKED, obj, authority=AUTHORITY,
            context_extensions={xapi.EXT_LEARNER: learner(n)}, timestamp=at)
    return events.EventType.CERTIFICATE_EARNED, xapi.statement(learner(n), xapi.EARNED, obj, authority=AUTHORITY,
                                                               timestamp=at)


def new_id() -> str:
    return str(uuid.uuid4())


def as_records(facts: list[tuple[str, dict]], topic: str = "test") -> list[Record]:
    return [Record(topic, 0, offset, xapi.learner_key(stmt["actor"]).encode(), xapi.encode(stmt),
                   events.statement_headers("test", kind, stmt)) for offset, (kind, stmt) in enumerate(facts)]


def first_generation_headers(source: str, kind: str) -> list[tuple[str, bytes]]:
    """The headers every record carried before CloudEvents (topics keep those forever)."""
    return [(events.HEADER_SOURCE, source.encode()), (events.HEADER_EVENT_TYPE, kind.encode()),
            (events.HEADER_SCHEMA_VERSION, events.SCHEMA_VERSION.encode())]


def voiding(n: int, statement_id: str, at: datetime) -> tuple[str, dict]:
    """An LMS takes back one of its statements (through the LRS)."""
    return events.EventType.LRS_STATEMENT, xapi.statement(
        learner(n), xapi.VOIDED, {"objectType": "StatementRef", "id": statement_id}, authority=AUTHORITY,
        timestamp=at)
