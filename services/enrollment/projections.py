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


def on_course_imported(conn: Connection, statements: list[dict]) -> None:
    rows = [{"id": course.id, "course_iri": course.course_iri, "title": course.title,
             "required_modules": list(course.required_modules), "imported_at": xapi.moment(s)}
            for s in statements for course in [catalog.course(s["object"])]]
    db.upsert(conn, t.courses, rows, ["id"])


def on_course_removed(conn: Connection, statements: list[dict]) -> None:
    ids = [catalog.course(s["object"]).id for s in statements]
    conn.execute(t.courses.delete().where(t.courses.c.id.in_(ids)))


HANDLERS = {
    EventType.COURSE_IMPORTED: on_course_imported,
    EventType.COURSE_REMOVED: on_course_removed,
}


def projection(settings: Settings) -> Projection:
    return Projection(topics=[settings.topic("content")], handlers=HANDLERS, tables=t.READ_MODELS)
