"""Reading the enrollment service's facts out of its statements (docs/events.md).

Every consumer of learnstream.enrollment.v1 (progress, assessment, certification) needs
the same things from a statement: the programme with its rules, the cohort, and the
enrolment (who, which registration, which deadline). The enrollment service writes them
in services/enrollment/statements.py; this is the one place that reads them back.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared import xapi
from shared.errors import reads_contract


@dataclass(frozen=True)
class Programme:
    id: str
    code: str
    title: str
    activity: dict
    required_modules: tuple[str, ...]
    final_test: str
    window_days: int | None
    cmi5_course: str | None = None  # the imported course that delivers it, if any


@dataclass(frozen=True)
class Cohort:
    id: str
    programme_id: str
    name: str
    agency: str | None
    province: str | None
    wave: int | None
    accounts_issued_at: datetime | None
    activity: dict


@dataclass(frozen=True)
class Enrolment:
    registration: str
    learner_key: str
    actor: dict
    name: str | None
    organisation: str | None
    programme: Programme
    cohort: Cohort | None
    deadline: datetime | None
    at: datetime  # when the statement says it happened (enrolled, or withdrew)


def _extension(activity: dict, key: str) -> dict:
    return ((activity.get("definition") or {}).get("extensions") or {})[key]


@reads_contract
def programme(activity: dict) -> Programme:
    details = _extension(activity, xapi.EXT_PROGRAMME)
    return Programme(
        id=details["id"], code=details["code"], title=xapi.activity_name(activity) or details["code"],
        activity=activity, required_modules=tuple(details["required_modules"]), final_test=details["final_test"],
        window_days=details.get("window_days"), cmi5_course=details.get("cmi5_course"))


@reads_contract
def cohort(activity: dict) -> Cohort:
    details = _extension(activity, xapi.EXT_COHORT)
    issued = details.get("accounts_issued_at")
    return Cohort(
        id=details["id"], programme_id=details["programme_id"], name=xapi.activity_name(activity) or details["id"],
        agency=details.get("agency"), province=details.get("province"), wave=details.get("wave"),
        accounts_issued_at=xapi.parse_timestamp(issued) if issued else None, activity=activity)


@reads_contract
def enrolment(stmt: dict) -> Enrolment:
    """From an enrolment.registered or enrolment.withdrawn statement."""
    grouping = xapi.context_activity(stmt, "grouping")
    ext = xapi.context_extensions(stmt)
    deadline = ext.get(xapi.EXT_DEADLINE)
    return Enrolment(
        registration=xapi.registration(stmt), learner_key=xapi.learner_key(stmt["actor"]), actor=stmt["actor"],
        name=stmt["actor"].get("name"), organisation=ext.get(xapi.EXT_ORGANISATION),
        programme=programme(stmt["object"]), cohort=cohort(grouping) if grouping else None,
        deadline=xapi.parse_timestamp(deadline) if deadline else None, at=xapi.moment(stmt))


@dataclass(frozen=True)
class Course:
    """A cmi5 course the progress service's LMS imported (learnstream.content.v1)."""

    id: str  # the LMS's id of the import (part of every module id below)
    course_iri: str  # the publisher's id in cmi5.xml
    title: str
    required_modules: tuple[str, ...]  # its AUs' and blocks' activity ids, as the LMS says them
    activity: dict


@reads_contract
def course(activity: dict) -> Course:
    """From a course.imported or course.removed statement's object."""
    details = _extension(activity, xapi.EXT_CMI5_COURSE)
    return Course(id=details["id"], course_iri=details["course_iri"],
                  title=xapi.activity_name(activity) or details["course_iri"],
                  required_modules=tuple(details.get("required_modules") or ()), activity=activity)


def latest_by_id(rows: list[dict]) -> list[dict]:
    """One row per id, the last one winning: a batch upsert may not touch a row twice."""
    return list({row["id"]: row for row in rows}.values())
