"""How enrollment facts are told on the bus: one xAPI statement per fact."""
from __future__ import annotations

from datetime import datetime

from services.enrollment.domain import Cohort, Enrolment, Programme
from shared import xapi
from shared.events import Event, EventType

AUTHORITY = xapi.service_agent("enrollment")


def programme_activity(programme: Programme) -> dict:
    return xapi.activity(
        programme.activity_id, name=programme.title, type_=xapi.ACTIVITY_TYPE_PROGRAMME,
        extensions={xapi.EXT_PROGRAMME: {
            "id": programme.id, "code": programme.code, "required_modules": list(programme.required_modules),
            "final_test": programme.final_test, "window_days": programme.window_days,
            **({"cmi5_course": programme.cmi5_course} if programme.cmi5_course else {})}},
    )


def cohort_activity(cohort: Cohort) -> dict:
    return xapi.activity(
        cohort.activity_id, name=cohort.name, type_=xapi.ACTIVITY_TYPE_COHORT,
        extensions={xapi.EXT_COHORT: {
            "id": cohort.id, "programme_id": cohort.programme_id, "agency": cohort.agency,
            "province": cohort.province, "wave": cohort.wave,
            "accounts_issued_at": xapi.format_timestamp(cohort.accounts_issued_at)}},
    )


def programme_defined(programme: Programme, operator: str, now: datetime) -> Event:
    return Event(EventType.PROGRAMME_DEFINED, xapi.statement(
        xapi.operator_agent(operator), xapi.DEFINED, programme_activity(programme),
        authority=AUTHORITY, timestamp=now))


def cohort_defined(cohort: Cohort, programme: Programme, operator: str, now: datetime) -> Event:
    return Event(EventType.COHORT_DEFINED, xapi.statement(
        xapi.operator_agent(operator), xapi.DEFINED, cohort_activity(cohort),
        authority=AUTHORITY, parent=programme_activity(programme), timestamp=now))


def _enrolment_context(enrolment: Enrolment) -> dict:
    return {
        xapi.EXT_DEADLINE: xapi.format_timestamp(enrolment.deadline),
        xapi.EXT_ORGANISATION: enrolment.learner.organisation,
    }


def learner_enrolled(enrolment: Enrolment, programme: Programme, cohort: Cohort) -> Event:
    """The learner registered for the programme: actor = learner, object = programme,
    registration = enrolment id, parent = programme, grouping = cohort."""
    programme_obj = programme_activity(programme)
    return Event(EventType.LEARNER_ENROLLED, xapi.statement(
        enrolment.learner.actor, xapi.REGISTERED, programme_obj, authority=AUTHORITY,
        registration=enrolment.id, parent=programme_obj, grouping=cohort_activity(cohort),
        context_extensions=_enrolment_context(enrolment), timestamp=enrolment.enrolled_at))


def learner_withdrew(enrolment: Enrolment, programme: Programme, cohort: Cohort) -> Event:
    programme_obj = programme_activity(programme)
    extensions = _enrolment_context(enrolment) | {xapi.EXT_REASON: enrolment.withdrawal_reason}
    return Event(EventType.LEARNER_WITHDREW, xapi.statement(
        enrolment.learner.actor, xapi.WITHDREW, programme_obj, authority=AUTHORITY,
        registration=enrolment.id, parent=programme_obj, grouping=cohort_activity(cohort),
        context_extensions=extensions, timestamp=enrolment.withdrawn_at))
