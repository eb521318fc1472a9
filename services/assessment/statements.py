"""How assessment facts are told on the bus. Learner statements copy the actor, the
programme and the cohort from the enrolment statement, so every consumer ties them to
the same learner and registration."""
from __future__ import annotations

from datetime import datetime

from services.assessment.domain import Attempt, FinalTest
from shared import xapi
from shared.events import Event, EventType

AUTHORITY = xapi.service_agent("assessment")


def final_test_activity(activity_id: str, programme: dict, extensions: dict | None = None) -> dict:
    title = xapi.activity_name(programme) or "programme"
    return xapi.activity(activity_id, name=f"Final test: {title}", type_=xapi.ACTIVITY_TYPE_ASSESSMENT,
                         extensions=extensions)


def final_test_defined(test: FinalTest, revision: int, activity_id: str, programme: dict, operator: str,
                       now: datetime) -> Event:
    details = {
        "programme_id": test.programme_id, "revision": revision, "max_attempts": test.max_attempts,
        "counting": test.counting,
        "pass_mark": test.pass_mark, "time_limit_seconds": int(test.time_limit.total_seconds()),
        "question_count": test.total_questions, "per_topic": dict(test.per_topic) or None,
    }
    return Event(EventType.FINAL_TEST_DEFINED, xapi.statement(
        xapi.operator_agent(operator), xapi.DEFINED,
        final_test_activity(activity_id, programme, {xapi.EXT_FINAL_TEST: details}),
        authority=AUTHORITY, parent=programme, timestamp=now))


def _attempt_details(attempt: Attempt) -> dict:
    return {"id": attempt.id, "number": attempt.number, "bank_version": attempt.bank_version,
            "started_at": xapi.format_timestamp(attempt.started_at),
            "expires_at": xapi.format_timestamp(attempt.expires_at), "status": attempt.status,
            "questions": len(attempt.questions)}


def _learner_statement(verb: xapi.Verb, attempt: Attempt, enrolment, moment: datetime,
                       result: dict | None = None) -> dict:
    return xapi.statement(
        enrolment.actor, verb, final_test_activity(enrolment.final_test, enrolment.programme),
        authority=AUTHORITY, registration=attempt.registration, parent=enrolment.programme,
        grouping=enrolment.cohort, context_extensions={xapi.EXT_ATTEMPT: _attempt_details(attempt)},
        result=result, timestamp=moment)


def attempt_started(attempt: Attempt, enrolment) -> Event:
    return Event(EventType.ATTEMPT_STARTED,
                 _learner_statement(xapi.ATTEMPTED, attempt, enrolment, attempt.started_at))


def _duration(attempt: Attempt) -> str:
    seconds = (attempt.finished_at - attempt.started_at).total_seconds()
    return f"PT{max(seconds, 0):.3f}S"


def attempt_finished(attempt: Attempt, enrolment, attempts_allowed: int | None = None) -> list[Event]:
    """Scored, then passed or failed, both stamped when the attempt finished. The result
    says how many attempts are used and allowed, so every reader tells a failure with
    attempts left from a learner out of attempts (who alone has failed) the same way."""
    score = attempt.score
    result = {
        "score": {"scaled": score.scaled, "raw": score.raw, "min": 0, "max": score.max},
        "completion": True, "duration": _duration(attempt),
        "extensions": {xapi.EXT_ATTEMPT: {"number": attempt.number, "status": attempt.status,
                                          "pass_mark": attempt.pass_mark, "attempts_used": attempt.number,
                                          "attempts_allowed": attempts_allowed}},
    }
    verdict = xapi.PASSED if attempt.success else xapi.FAILED
    return [
        Event(EventType.ATTEMPT_SCORED,
              _learner_statement(xapi.SCORED, attempt, enrolment, attempt.finished_at, result)),
        Event(EventType.ATTEMPT_PASSED if attempt.success else EventType.ATTEMPT_FAILED,
              _learner_statement(verdict, attempt, enrolment, attempt.finished_at,
                                 result | {"success": bool(attempt.success)})),
    ]
