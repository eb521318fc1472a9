"""What enrollment learns from the bus: the cmi5 courses the progress service's LMS
imported (learnstream.content.v1), so that a programme can be defined from one or have
one attached (commands.py). Programmes are enrollment's; the courses and their content
are the LMS's; this small read model is how the one names the other without either
reading the other's database.
"""
from __future__ import annotations

from sqlalchemy.engine import Connection

from services.enrollment import tables as t
from shared import catalog, db, xapi
from shared.config import Settings
from shared.consumer import Projection
from shared.events import EventType


def _course_row(statement: dict) -> dict:
    course = catalog.course(statement["object"])
    return {"id": course.id, "course_iri": course.course_iri, "title": course.title,
            "required_modules": list(course.required_modules), "imported_at": xapi.moment(statement)}


def on_course_imported(conn: Connection, statements: list[dict]) -> None:
    # Never the removal mark: a course's id is never imported again, so a removal already
    # read stands (a course id is the LMS's, new on every import).
    db.upsert(conn, t.courses, [_course_row(s) for s in statements], ["id"],
              update=["course_iri", "title", "required_modules", "imported_at"])


def on_course_removed(conn: Connection, statements: list[dict]) -> None:
    # The removal tells the whole course, so its tombstone is whole even if its import
    # has not been read yet (imported_at then says "by then" until it is).
    rows = [_course_row(s) | {"removed_at": xapi.moment(s)} for s in statements]
    db.upsert(conn, t.courses, rows, ["id"], update=["removed_at"])


HANDLERS = {
    EventType.COURSE_IMPORTED: on_course_imported,
    EventType.COURSE_REMOVED: on_course_removed,
}


def projection(settings: Settings) -> Projection:
    return Projection(topics=[settings.topic("content")], handlers=HANDLERS, tables=t.READ_MODELS)
