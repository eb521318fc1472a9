"""How certification facts are told on the bus (docs/events.md, Certification).

`earned`: actor = the learner (as the enrolment statement named them), object = the
certificate. `revoked`: actor = the operator (or this service, when the rule undid its
own issue), object = the certificate; the record's key is still the learner's, so every
fact about a learner stays on one partition.
"""
from __future__ import annotations

from datetime import datetime

from shared import xapi
from shared.events import EventType, KeyedEvent

AUTHORITY = xapi.service_agent("certification")

def certificate_activity(cert: dict, activity_base: str) -> dict:
    return xapi.activity(
        f"{activity_base}certificates/{cert['id']}", name=f"Certificate {cert['number']}",
        type_=xapi.ACTIVITY_TYPE_CERTIFICATE,
        extensions={xapi.EXT_CERTIFICATE: {
            "id": cert["id"], "number": cert["number"], "issue_no": cert["issue_no"],
            "programme_id": cert["programme_id"], "programme_code": cert["programme_code"],
            "issued_at": xapi.format_timestamp(cert["issued_at"])}},
    )


def earned(cert: dict, activity_base: str) -> KeyedEvent:
    """`cert` is a certificates row (as a dict)."""
    stmt = xapi.statement(
        cert["actor"], xapi.EARNED, certificate_activity(cert, activity_base), authority=AUTHORITY,
        registration=cert["registration"], parent=cert["programme_activity"], grouping=cert["cohort_activity"],
        context_extensions={xapi.EXT_ORGANISATION: cert["organisation"]},
        result={"completion": True, "success": True}, timestamp=cert["issued_at"])
    return KeyedEvent(EventType.CERTIFICATE_EARNED, stmt, cert["learner_key"])


def revoked(cert: dict, activity_base: str, by: str, at: datetime, reason: str) -> KeyedEvent:
    actor = AUTHORITY if by == "system" else xapi.operator_agent(by)
    stmt = xapi.statement(
        actor, xapi.REVOKED, certificate_activity(cert, activity_base), authority=AUTHORITY,
        registration=cert["registration"], parent=cert["programme_activity"], grouping=cert["cohort_activity"],
        context_extensions={xapi.EXT_REASON: reason, xapi.EXT_ORGANISATION: cert["organisation"],
                            xapi.EXT_LEARNER: cert["actor"]},
        timestamp=at)
    return KeyedEvent(EventType.CERTIFICATE_REVOKED, stmt, cert["learner_key"])
