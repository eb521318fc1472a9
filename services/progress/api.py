"""Progress HTTP routes: operator views over the read models (the dashboard's pages: dashboard.py). Thin."""
from flask import Response, current_app

from services.progress import queries
from services.progress import schemas as s
from shared import http, i18n
from shared.auth import SECURITY, protect, visible_units
from shared.http import Blueprint, attachment

blp = Blueprint("progress", __name__, url_prefix="/",
                description="Campaign, cohort and learner progress (operator credentials required; "
                            "an agency operator sees only the cohorts of their units)")
# The dashboard's script (dashboard.py) reads these with its session cookie: the session
# sets the principal before this blueprint's check (dashboard.install).
protect(blp)


def _now():
    return current_app.extensions["progress_clock"]()


def _units():
    return visible_units()


@blp.route("/campaign", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.CampaignSchema)
def get_campaign():
    """Totals over every cohort the operator may see"""
    return queries.campaign(http.engine(), _now(), _units())


@blp.route("/rollups", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.RollupArgs, location="query")
@blp.response(200, s.RollupSchema(many=True))
def get_rollups(args):
    """Counts per organisation unit (agency), province or programme"""
    return queries.rollup(http.engine(), args["by"], _now(), _units())


@blp.route("/cohorts", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.CohortListArgs, location="query")
@blp.response(200, s.CohortProgressPageSchema)
def list_cohorts(args):
    """Cohorts with their counts and rates"""
    return queries.cohorts(http.engine(), args, _now(), _units())


@blp.route("/cohorts/<cohort_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.CohortProgressSchema)
def get_cohort(cohort_id):
    """One cohort's counts and rates"""
    return queries.cohort(http.engine(), cohort_id, _now(), _units())


@blp.route("/cohorts/<cohort_id>/learners", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.LearnerListArgs, location="query")
@blp.response(200, s.LearnerProgressPageSchema)
def list_learners(args, cohort_id):
    """A cohort's learners: progress, final test, certificate, deadline, overdue; filter, sort, page"""
    return queries.learners(http.engine(), cohort_id, args, _now(), _units())


@blp.route("/cohorts/<cohort_id>/learners.csv", methods=["GET"])
@blp.doc(security=SECURITY, responses={"200": {"description": "CSV, one row per learner",
                                               "content": {"text/csv": {"schema": {"type": "string"}}}}})
@blp.arguments(s.LearnerFilterArgs, location="query")
def export_learners(args, cohort_id):
    """A cohort's learner list as CSV (same filters as the JSON list, without paging)"""
    body = queries.learners_csv(http.engine(), cohort_id, args, _now(), _units(),
                                i18n.csv_headers(queries.CSV_COLUMNS))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": attachment(f"cohort-{cohort_id}-learners.csv")})


@blp.route("/cohorts/<cohort_id>/series", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.DaySchema(many=True))
def get_series(cohort_id):
    """Per day: enrolled, active, completed (all modules) and certified, over the window"""
    return queries.series(http.engine(), cohort_id, _now(), _units())
