"""Enrollment HTTP routes: thin; validation in schemas.py, commands in commands.py, reads in queries.py."""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from services.enrollment import queries
from services.enrollment import schemas as s
from services.enrollment.account_commands import AccountCommands
from services.enrollment.commands import EnrollmentCommands
from shared import http
from shared.auth import SECURITY, protect, visible_units
from shared.http import Blueprint, accepts_any_body, uploaded_csv

blp = Blueprint("enrollment", __name__, url_prefix="/",
                description="Programmes, cohorts, enrolments and the accounts (credentials required; "
                            "shared/permissions.py says which role may call what)")
protect(blp)


def _commands() -> EnrollmentCommands:
    return http.commands()


def _accounts() -> AccountCommands:
    return current_app.extensions["account_commands"]


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


@blp.route("/programmes/<programme_id>/cmi5-course", methods=["PUT"])
@blp.doc(security=SECURITY)
@blp.arguments(s.CourseAttachmentSchema)
@blp.response(200, s.ProgrammeSchema)
@blp.alt_response(409, description="learners are enrolled: the required modules can no longer change")
def attach_course(data, programme_id):
    """Attach an imported cmi5 course: its AUs and blocks become the required modules"""
    _commands().attach_course(programme_id, data["cmi5_course"], g.operator)
    return queries.programme(http.engine(), programme_id)


@blp.route("/cohorts")
class Cohorts(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(s.CohortListArgs, location="query")
    @blp.response(200, s.CohortPageSchema)
    def get(self, args):
        """List cohorts"""
        return queries.cohorts(http.engine(), args, visible_units())

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
    return queries.cohort(http.engine(), cohort_id, visible_units())


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
    return queries.enrolments(http.engine(), args, visible_units())


@blp.route("/enrolments/<enrolment_id>")
@blp.doc(security=SECURITY)
@blp.response(200, s.EnrolmentSchema)
def get_enrolment(enrolment_id):
    """Fetch an enrolment"""
    return queries.enrolment(http.engine(), enrolment_id, visible_units())


@blp.route("/enrolments/<enrolment_id>/withdrawal", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.WithdrawalSchema)
@blp.response(200, s.EnrolmentSchema)
def withdraw(data, enrolment_id):
    """Withdraw a learner; 409 if already withdrawn"""
    _commands().withdraw(enrolment_id, data["reason"])
    return queries.enrolment(http.engine(), enrolment_id)


# --- accounts: every service checks them (shared.auth); enrollment owns them -------------------

@blp.route("/accounts")
class Accounts(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(s.AccountListArgs, location="query")
    @blp.response(200, s.AccountPageSchema)
    def get(self, args):
        """List accounts (never a secret)"""
        return queries.accounts(http.engine(), args)

    @blp.doc(security=SECURITY)
    @blp.arguments(s.AccountInSchema)
    @blp.response(201, s.AccountWithSecretSchema)
    def post(self, data):
        """Create an account; its secret is in this answer only. Every service accepts it within seconds"""
        account, secret = _accounts().create(data, g.operator)
        return account.as_public() | {"secret": secret}


@blp.route("/accounts/<key>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.AccountSchema)
def get_account(key):
    """Fetch an account"""
    return queries.account(http.engine(), key)


@blp.route("/accounts/<key>", methods=["PATCH"])
@blp.doc(security=SECURITY)
@blp.arguments(s.AccountChangeSchema)
@blp.response(200, s.AccountSchema)
def change_account(data, key):
    """Change an account's role, units, cohorts, scopes, name or locale (a new role drops the old one's limits)"""
    return _accounts().change(key, data, g.operator).as_public()


@blp.route("/accounts/<key>/secret", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(200, s.AccountWithSecretSchema)
def rotate_secret(key):
    """A new secret, in this answer only; the old one stops working everywhere within seconds"""
    account, secret = _accounts().rotate_secret(key, g.operator)
    return account.as_public() | {"secret": secret}


@blp.route("/accounts/<key>/disable", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(200, s.AccountSchema)
def disable_account(key):
    """Disable an account: its key is refused everywhere within seconds; 409 if already disabled"""
    return _accounts().disable(key, g.operator).as_public()
