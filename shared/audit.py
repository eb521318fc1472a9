"""The audit trail: every change an operator or client makes through a service's API
(POST, PUT, PATCH, DELETE answered with success), and every change made with
`learnstream accounts`, is recorded once in that service's
`audit_log` (shared.account_tables): who (key and role), what (the route and the ids in
its path), when, from where (the client's address), and the answer's status. Never a
body: bodies carry learner data and secrets.

Recorded after the change committed, in a transaction of its own, by the one
after_request hook every service app installs (shared.http): a route cannot forget it.
Read with GET /audit (JSON, paged, filtered) and GET /audit.csv on each service, by the
campaign administrator and the auditor (shared.permissions).
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, request, stream_with_context
from marshmallow import Schema, fields
from sqlalchemy.engine import Engine

from shared import db, xapi
from shared.auth import SECURITY, protect
from shared.blueprint import Blueprint
from shared.csv_export import csv_chunks
from shared.schemas import PageArgs, Timestamp, page_of

log = logging.getLogger(__name__)

CHANGES = ("POST", "PUT", "PATCH", "DELETE")
COLUMNS = ["id", "at", "actor", "role", "action", "target", "status", "remote_addr"]


def write(engine: Engine, table: sa.Table, *, actor: str, role: str, action: str, target: dict,
          status: int, remote_addr: str | None) -> None:
    """One row of the trail, in a transaction of its own."""
    row = {"at": xapi.utc_now(), "actor": actor, "role": role, "action": action,
           "target": ", ".join(f"{name}={value}" for name, value in sorted(target.items()))[:1000],
           "status": status, "remote_addr": remote_addr}
    with engine.begin() as conn:
        conn.execute(table.insert().values(**row))


def record(engine: Engine, table: sa.Table, status: int) -> None:
    """One row for the change this request made (its principal is in g)."""
    principal = g.get("principal")
    rule = request.url_rule.rule if request.url_rule else request.path
    write(engine, table, actor=principal.key, role=principal.role, action=f"{request.method} {rule}",
          target=request.view_args or {}, status=status, remote_addr=request.remote_addr)


def install(app: Flask, engine: Engine, table: sa.Table, blueprint_names: set[str]) -> None:
    @app.after_request
    def _audit(response: Response):
        if (request.method in CHANGES and response.status_code < 400 and request.blueprint in blueprint_names
                and g.get("principal") is not None):
            try:
                record(engine, table, response.status_code)
            except Exception:  # the change stands; say loudly that its record is missing
                log.exception("audit record not written", extra={"action": f"{request.method} {request.path}"})
        return response


class AuditArgs(PageArgs):
    actor = fields.String()
    action = fields.String(metadata={"description": "text the action contains (\"POST\", \"/cohorts\")"})
    since = Timestamp()
    until = Timestamp()


class AuditFilterArgs(Schema):
    actor = fields.String()
    action = fields.String()
    since = Timestamp()
    until = Timestamp()


class AuditEntrySchema(Schema):
    id = fields.Int()
    at = Timestamp()
    actor = fields.String()
    role = fields.String()
    action = fields.String()
    target = fields.String()
    status = fields.Int()
    remote_addr = fields.String(allow_none=True)


AuditPageSchema = page_of(AuditEntrySchema)


def _query(table: sa.Table, args: dict) -> sa.Select:
    query = sa.select(table)
    if args.get("actor"):
        query = query.where(table.c.actor == args["actor"])
    if args.get("action"):
        query = query.where(table.c.action.contains(args["action"], autoescape=True))
    if args.get("since"):
        query = query.where(table.c.at >= args["since"])
    if args.get("until"):
        query = query.where(table.c.at < args["until"])
    return query.order_by(table.c.id)


def _engine() -> Engine:
    return current_app.config["LEARNSTREAM_ENGINE"]


def blueprint(table: sa.Table) -> Blueprint:
    """GET /audit and /audit.csv over `table`, for one service's app."""
    blp = Blueprint("audit", __name__, url_prefix="/",
                         description="The audit trail of changes made through this service "
                                     "(campaign administrator and auditor)")
    protect(blp)

    @blp.route("/audit", methods=["GET"])
    @blp.doc(security=SECURITY)
    @blp.arguments(AuditArgs, location="query")
    @blp.response(200, AuditPageSchema)
    def list_audit(args):
        """Changes made through this service: who, what, when, from where"""
        with db.reading(_engine()) as conn:
            return db.paged(conn, _query(table, args), args)

    @blp.route("/audit.csv", methods=["GET"])
    @blp.doc(security=SECURITY, responses={"200": {"description": "CSV", "content": {"text/csv": {}}}})
    @blp.arguments(AuditFilterArgs, location="query")
    def export_audit(args):
        """The audit trail as CSV (same filters, no paging)"""
        engine = _engine()

        def rows():
            with db.reading(engine) as conn:
                for row in conn.execute(_query(table, args)):
                    item = row._asdict()
                    item["at"] = xapi.format_timestamp(item["at"])
                    yield item

        return Response(stream_with_context(csv_chunks(COLUMNS, rows())), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="audit.csv"'})

    return blp
