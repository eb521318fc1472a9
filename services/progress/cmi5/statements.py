"""The statements the LMS itself makes (cmi5 spec 9.3): launched, satisfied, abandoned,
waived. Plain dicts, ready for the LRS's store. And the catalog facts it tells enrollment
on learnstream.content.v1: a course imported, or removed (Events for the outbox)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from services.progress.cmi5 import terms as c
from shared import xapi
from shared.events import EventType, KeyedEvent

# The LMS's statements' authority: the progress service, as the services' own statements.
AUTHORITY = xapi.service_agent("progress")


def duration(span: timedelta) -> str:
    return f"PT{max(span.total_seconds(), 0):.2f}S"


def _context(registration: str, session_id: str, grouping: str, extensions: dict | None = None,
             moveon: bool = False) -> dict:
    categories = [{"id": c.CATEGORY_CMI5}] + ([{"id": c.CATEGORY_MOVEON}] if moveon else [])
    return {"registration": registration,
            "contextActivities": {"grouping": [{"id": grouping}], "category": categories},
            "extensions": {c.EXT_SESSION: session_id, **(extensions or {})}}


def _statement(actor: dict, verb: str, obj: dict, context: dict, now: datetime, result: dict | None = None) -> dict:
    statement = {"id": str(uuid.uuid4()), "actor": actor,
                 "verb": {"id": verb, "display": {"en-US": c.VERB_NAMES[verb]}},
                 "object": obj, "context": context, "timestamp": xapi.format_timestamp(now),
                 "stored": xapi.format_timestamp(now), "authority": AUTHORITY, "version": "1.0.0"}
    if result:
        statement["result"] = result
    return statement


def au_object(activity_id: str, title: dict, activity_type: str | None = None) -> dict:
    definition = {"name": title}
    if activity_type:
        definition["type"] = activity_type
    return {"objectType": "Activity", "id": activity_id, "definition": definition}


def launched(actor: dict, au_obj: dict, registration: str, session_id: str, publisher_id: str, now: datetime,
             launch_data: dict, launch_url: str) -> dict:
    extensions = {c.EXT_LAUNCH_MODE: launch_data["launchMode"], c.EXT_LAUNCH_URL: launch_url,
                  c.EXT_MOVE_ON: launch_data["moveOn"]}
    if "masteryScore" in launch_data:
        extensions[c.EXT_MASTERY] = launch_data["masteryScore"]
    if "launchParameters" in launch_data:
        extensions[c.EXT_LAUNCH_PARAMETERS] = launch_data["launchParameters"]
    return _statement(actor, c.LAUNCHED, au_obj, _context(registration, session_id, publisher_id, extensions), now)


def satisfied(actor: dict, activity_id: str, activity_type: str, title: dict, registration: str, session_id: str,
              publisher_id: str, now: datetime, modules: list[str] | None = None) -> dict:
    """`modules`: for the course, the programme modules it completes (progress counts them)."""
    obj = {"objectType": "Activity", "id": activity_id, "definition": {"type": activity_type, "name": title}}
    if modules:
        obj["definition"]["extensions"] = {xapi.EXT_MODULES: modules}
    return _statement(actor, c.SATISFIED, obj, _context(registration, session_id, publisher_id), now)


def abandoned(actor: dict, au_obj: dict, registration: str, session_id: str, publisher_id: str, now: datetime,
              launched_at: datetime) -> dict:
    return _statement(actor, c.ABANDONED, au_obj, _context(registration, session_id, publisher_id), now,
                      {"duration": duration(now - launched_at)})


def waived(actor: dict, au_obj: dict, registration: str, session_id: str, publisher_id: str, now: datetime,
           reason: str) -> dict:
    return _statement(actor, c.WAIVED, au_obj,
                      _context(registration, session_id, publisher_id, moveon=True), now,
                      {"success": True, "completion": True, "extensions": {c.EXT_REASON: reason}})


def course_activity(activity_id: str, course_pk: str, course_iri: str, title: dict, modules: list[str]) -> dict:
    """The course as the catalog facts name it (shared.catalog.course reads it back)."""
    return {"objectType": "Activity", "id": activity_id,
            "definition": {"type": c.TYPE_COURSE, "name": title, "extensions": {xapi.EXT_CMI5_COURSE: {
                "id": course_pk, "course_iri": course_iri, "required_modules": modules}}}}


# Keyed by the LMS's course id: a course's import and its removal stay on one partition,
# so no reader can see the removal first, whoever made each.

def course_imported(course_pk: str, course: dict, operator: str, now: datetime) -> KeyedEvent:
    return KeyedEvent(EventType.COURSE_IMPORTED, xapi.statement(
        xapi.operator_agent(operator), xapi.DEFINED, course, authority=AUTHORITY, timestamp=now), course_pk)


def course_removed(course_pk: str, course: dict, operator: str, now: datetime) -> KeyedEvent:
    return KeyedEvent(EventType.COURSE_REMOVED, xapi.statement(
        xapi.operator_agent(operator), xapi.REMOVED, course, authority=AUTHORITY, timestamp=now), course_pk)
