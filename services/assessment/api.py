"""Assessment HTTP routes: thin; shapes in schemas.py, rules in domain.py, commands in commands.py,
reads in queries.py.

Every route needs credentials, the learner-facing attempt routes too: until learners
have their own sign-in, the learning portal (an LMS client's key, for the learners of
the cohorts it is granted) calls them on a learner's behalf.
"""
from __future__ import annotations

from flask import g, request
from flask_smorest import abort
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest

from services.assessment import queries
from services.assessment import schemas as s
from services.assessment.commands import AssessmentCommands
from shared import http
from shared.auth import SECURITY, current_principal, protect, require_cohort, visible_units
from shared.http import Blueprint, accepts_any_body, uploaded_csv

blp = Blueprint("assessment", __name__, url_prefix="/",
                description="Final tests, attempts and results (credentials required; LMS clients: the attempt "
                            "calls, for the cohorts they are granted)")
protect(blp)


def _commands() -> AssessmentCommands:
    return http.commands()


def _granted(cohort_of, id_: str) -> None:
    """An LMS client acts only for learners of the cohorts it is granted."""
    principal = current_principal()
    if principal is not None and principal.cohorts is not None:
        require_cohort(cohort_of(http.engine(), id_))


@blp.route("/programmes/<programme_id>/question-bank", methods=["POST"])
@blp.doc(security=SECURITY, requestBody={
    "required": True,
    "description": "JSON {\"questions\": [...]} (see BankIn), or CSV (text/csv, or the `file` field of a "
                   "multipart form) with columns id, type, topic, text, options, correct; several options "
                   "or correct answers are separated by '|'.",
    "content": {"application/json": {"schema": {"type": "object", "properties": {"questions": {
                    "type": "array", "items": {"type": "object", "description": "id, text, type (single_choice, "
                    "multiple_choice, true_false), topic, options, correct"}}}}},
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "string", "format": "binary"}}}}},
})
@blp.response(201, s.BankSchema)
@accepts_any_body
def import_bank(programme_id):
    """Import a new version of the programme's question bank; 422 names every bad question"""
    if request.is_json:
        try:  # an empty body is a bank with no questions; one that is not JSON is a 400, as elsewhere
            body = request.get_json() if request.get_data() else {}
        except BadRequest:
            abort(400, errors={"json": ["Invalid JSON body."]})
        try:
            data = s.BankInSchema().load(body)
        except ValidationError as exc:
            abort(422, message="the question bank is not valid", errors={"json": exc.messages})
        return _commands().import_bank(programme_id, data["questions"], g.operator)
    text = uploaded_csv("application/json, text/csv or multipart/form-data")
    return _commands().import_bank_csv(programme_id, text, g.operator)



@blp.route("/programmes/<programme_id>/question-bank", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.BankSchema)
def get_bank(programme_id):
    """The newest version of the programme's question bank, answers included"""
    return queries.latest_bank(http.engine(), programme_id)


@blp.route("/programmes/<programme_id>/question-bank/versions/<int:version>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.BankSchema)
def get_bank_version(programme_id, version):
    """One version of the programme's question bank"""
    return queries.bank_version(http.engine(), programme_id, version)


@blp.route("/programmes/<programme_id>/final-test", methods=["PUT"])
@blp.doc(security=SECURITY)
@blp.arguments(s.FinalTestInSchema)
@blp.response(200, s.FinalTestSchema)
def define_final_test(data, programme_id):
    """Define (or replace) the final test: questions drawn, time limit, pass mark, attempts, best or last"""
    return _commands().define_final_test(programme_id, data, g.operator)


@blp.route("/programmes/<programme_id>/final-test", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.FinalTestSchema)
def get_final_test(programme_id):
    """The programme's final-test definition"""
    return queries.final_test(http.engine(), programme_id)


@blp.route("/attempts", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.AttemptStartSchema)
@blp.response(201, s.AttemptSchema)
def start_attempt(data):
    """Start an attempt for an enrolment: the drawn questions, without answers.
    403 after withdrawal or the deadline, 409 when no attempt is left or one is open"""
    _granted(queries.cohort_of_registration, data["registration"])
    return queries.attempt_view(_commands().start_attempt(data["registration"]))


@blp.route("/attempts/<attempt_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.AttemptSchema)
def get_attempt(attempt_id):
    """An attempt; one past its time limit is closed and scored first"""
    _granted(queries.cohort_of_attempt, attempt_id)
    return queries.attempt_view(_commands().get_attempt(attempt_id))


@blp.route("/attempts/<attempt_id>/answers", methods=["PUT"])
@blp.doc(security=SECURITY)
@blp.arguments(s.AnswersSchema)
@blp.response(200, s.AttemptSchema)
def save_answers(data, attempt_id):
    """Save answers so far (they count if time runs out); 409 once closed or out of time"""
    _granted(queries.cohort_of_attempt, attempt_id)
    return queries.attempt_view(_commands().save_answers(attempt_id, data["answers"]))


@blp.route("/attempts/<attempt_id>/submission", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.AnswersSchema)
@blp.response(200, s.AttemptSchema)
def submit(data, attempt_id):
    """Submit once and get the score. Late, the attempt is closed as timed_out and scored
    with the answers saved in time. 409 if it was already submitted or closed"""
    _granted(queries.cohort_of_attempt, attempt_id)
    return queries.attempt_view(_commands().submit(attempt_id, data["answers"]))


@blp.route("/attempts/close-expired", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(200, s.CloseExpiredSchema)
def close_expired():
    """Close and score every open attempt past its time limit (for a scheduler)"""
    return {"closed": _commands().close_expired()}


@blp.route("/results/<registration>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.LearnerResultDetailSchema)
def learner_result(registration):
    """One learner's standing (by enrolment id) and attempts, ours and those an LMS reported"""
    return queries.learner_result(http.engine(), registration, visible_units())


@blp.route("/cohorts/<cohort_id>/results", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.ResultListArgs, location="query")
@blp.response(200, s.ResultPageSchema)
def cohort_results(args, cohort_id):
    """A cohort's learners and their standing, with counts per status"""
    return queries.results(http.engine(), "cohort", cohort_id, args, visible_units())


@blp.route("/programmes/<programme_id>/results", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.ResultListArgs, location="query")
@blp.response(200, s.ResultPageSchema)
def programme_results(args, programme_id):
    """A programme's learners and their standing, with counts per status"""
    return queries.results(http.engine(), "programme", programme_id, args, visible_units())
