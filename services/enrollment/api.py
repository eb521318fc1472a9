"""Enrollment HTTP routes: thin; validation in schemas.py, commands in commands.py, reads in queries.py."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from services.enrollment import queries
from services.enrollment import schemas as s
from services.enrollment.commands import EnrollmentCommands
from shared import http
from shared.auth import SECURITY, protect
from shared.http import Blueprint, accepts_any_body, uploaded_csv

blp = Blueprint("enrollment", __name__, url_prefix="/",
                description="Programmes, cohorts and enrolments (operator credentials required)")
protect(blp)


def _commands() -> EnrollmentCommands:
    return http.commands()


@blp.route("/programmes")
class Programmes(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(s.ProgrammeListArgs, location="query")
    @blp.response(200, s.ProgrammePageSchema)
    def get(self, args):
        """List programmes"""
        return queries.programmes(http.engine(), args)

    @blp.doc(security=SECURITY)
    @blp.arguments(s.ProgrammeInSchema)
    @blp.response(201, s.ProgrammeSchema)
    def post(self, data):
        """Define a programme: its required modules, final test and completion window"""
        _commands().define_programme(data, g.operator)
        return queries.programmes(http.engine(), {"code": data["code"], "page": 1, "page_size": 1})["items"][0]


@blp.route("/programmes/<programme_id>")
@blp.doc(security=SECURITY)
@blp.response(200, s.ProgrammeSchema)
def get_programme(programme_id):
    """Fetch a programme"""
    return queries.programme(http.engine(), programme_id)


@blp.route("/cohorts")
class Cohorts(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(s.CohortListArgs, location="query")
    @blp.response(200, s.CohortPageSchema)
    def get(self, args):
        """List cohorts"""
        return queries.cohorts(http.engine(), args)

    @blp.doc(security=SECURITY)
    @blp.arguments(s.CohortInSchema)
    @blp.response(201, s.CohortSchema)
    def post(self, data):
        """Define a cohort of a programme (agency, province, wave, when accounts are issued)"""
        cohort = _commands().define_cohort(data, g.operator)
        return queries.cohort(http.engine(), cohort.id)


@blp.route("/cohorts/<cohort_id>")
@blp.doc(security=SECURITY)
@blp.response(200, s.CohortSchema)
def get_cohort(cohort_id):
    """Fetch a cohort"""
    return queries.cohort(http.engine(), cohort_id)


@blp.route("/cohorts/<cohort_id>/enrolments", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.LearnerSchema)
@blp.response(201, s.EnrolmentSchema)
def enrol(learner, cohort_id):
    """Enrol one learner in a cohort; 409 if already enrolled in the programme"""
    enrolment = _commands().enrol(cohort_id, learner)
    return queries.enrolment(http.engine(), enrolment.id)


@blp.route("/cohorts/<cohort_id>/enrolments/import", methods=["POST"])
@blp.doc(security=SECURITY, requestBody={
    "required": True,
    "description": "CSV with a header row; columns: name, email, account_home_page, account_name, organisation. "
                   "Send it as the body (text/csv) or as the `file` field of a multipart form.",
    "content": {"text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "string", "format": "binary"}}}}},
})
@blp.response(200, s.ImportReportSchema)
@accepts_any_body
def import_enrolments(cohort_id):
    """Bulk-enrol a cohort from CSV; bad rows are reported and the good ones kept"""
    return _commands().import_csv(cohort_id, uploaded_csv()).as_dict()



@blp.route("/enrolments")
@blp.doc(security=SECURITY)
@blp.arguments(s.EnrolmentListArgs, location="query")
@blp.response(200, s.EnrolmentPageSchema)
def list_enrolments(args):
    """List enrolments, filtered by programme, cohort, status or organisation"""
    return queries.enrolments(http.engine(), args)


@blp.route("/enrolments/<enrolment_id>")
@blp.doc(security=SECURITY)
@blp.response(200, s.EnrolmentSchema)
def get_enrolment(enrolment_id):
    """Fetch an enrolment"""
    return queries.enrolment(http.engine(), enrolment_id)


@blp.route("/enrolments/<enrolment_id>/withdrawal", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.WithdrawalSchema)
@blp.response(200, s.EnrolmentSchema)
def withdraw(data, enrolment_id):
    """Withdraw a learner; 409 if already withdrawn"""
    _commands().withdraw(enrolment_id, data["reason"])
    return queries.enrolment(http.engine(), enrolment_id)
