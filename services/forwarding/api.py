"""Forwarding operator routes (credentials required): thin; commands in commands.py, reads in queries.py."""
from __future__ import annotations

from flask import g, render_template

from services.forwarding import queries
from services.forwarding import schemas as s
from services.forwarding.commands import ForwardingCommands
from shared import http
from shared.auth import SECURITY, protect
from shared.http import Blueprint, html_page
from shared.schemas import PageArgs

blp = Blueprint("forwarding", __name__, url_prefix="/", template_folder="templates",
                description="Targets (other LRSs) statements are forwarded to, their lag and their quarantine "
                            "(operator credentials required)")
protect(blp)


def _commands() -> ForwardingCommands:
    return http.commands()


@blp.route("/targets", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(PageArgs, location="query")
@blp.response(200, s.TargetPageSchema)
def list_targets(args):
    """Every target, with its status (lag, retrying, last error, quarantined); never a password"""
    return queries.targets(http.engine(), args)


@blp.route("/targets", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.TargetInSchema)
@blp.response(201, s.TargetSchema)
def create_target(data):
    """Add a target: forwarding to it starts within seconds, from the first statement on the topics"""
    return queries.target(http.engine(), _commands().create(data, g.operator))


@blp.route("/targets/<target_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.TargetSchema)
def get_target(target_id):
    """A target and its status"""
    return queries.target(http.engine(), target_id)


@blp.route("/targets/<target_id>", methods=["PUT"])
@blp.doc(security=SECURITY)
@blp.arguments(s.TargetInSchema)
@blp.response(200, s.TargetSchema)
def put_target(data, target_id):
    """Change a target (every setting; the password only if given). Forwarding goes on from where it was;
    a stopped target starts again"""
    _commands().replace(target_id, data, g.operator)
    return queries.target(http.engine(), target_id)


@blp.route("/targets/<target_id>", methods=["DELETE"])
@blp.doc(security=SECURITY)
@blp.response(204)
def delete_target(target_id):
    """Remove a target with its offsets, status and quarantine"""
    _commands().delete(target_id)


@blp.route("/targets/<target_id>/quarantine", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.QuarantineArgs, location="query")
@blp.response(200, s.QuarantinePageSchema)
def list_quarantine(args, target_id):
    """Statements the target refused for good, with its answer (resolved=true: those replayed since)"""
    return queries.quarantine(http.engine(), target_id, args)


@blp.route("/targets/<target_id>/quarantine/replay", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.ReplayInSchema)
@blp.response(202, s.ReplaySchema)
def replay_quarantine(data, target_id):
    """Send quarantined statements again (all, or the ids given) once the target is fixed: the forwarder
    sends them before its next batch; delivered ones are resolved, refused ones keep the new answer"""
    return {"requested": _commands().request_replay(target_id, data.get("statement_ids") and
                                                   [str(i) for i in data["statement_ids"]])}


@blp.route("/forwarding", methods=["GET"])
@blp.doc(security=SECURITY, responses={"200": {"description": "HTML page"}})
@html_page
def page():
    """Lag per target, retrying, last error and quarantine (HTML, refreshed every 5 s)"""
    return render_template("forwarding.html", targets=queries.lag_page(http.engine()))
