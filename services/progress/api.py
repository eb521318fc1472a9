"""Progress HTTP routes (operator views over the read models): thin."""
from flask import current_app
from flask_smorest import Blueprint

from services.progress import schemas as s
from services.progress import views
from shared.auth import SECURITY, protect

blp = Blueprint("progress", __name__, url_prefix="/",
                description="Cohort progress read models (operator credentials required)")
protect(blp)


def _engine():
    return current_app.config["LEARNSTREAM_ENGINE"]


@blp.route("/cohorts", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.CohortListArgs, location="query")
@blp.response(200, s.CohortProgressPageSchema)
def list_cohorts(args):
    """Cohorts with their enrolment counts"""
    return views.cohorts(_engine(), args)


@blp.route("/cohorts/<cohort_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.CohortProgressSchema)
def get_cohort(cohort_id):
    """One cohort's counts"""
    return views.cohort(_engine(), cohort_id)


@blp.route("/cohorts/<cohort_id>/learners", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.LearnerListArgs, location="query")
@blp.response(200, s.LearnerProgressPageSchema)
def list_learners(args, cohort_id):
    """A cohort's learners and their enrolment status"""
    return views.learners(_engine(), cohort_id, args)
