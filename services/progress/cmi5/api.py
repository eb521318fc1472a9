"""cmi5 routes. The operator's (behind operator credentials): import a package, launch
an AU, waive an AU, abandon a session, read a registration. The AU's own, open to it:
the fetch URL (its one-time secret is the credential) and the package's files (content
a browser loads at the launch URL)."""
from __future__ import annotations

import json

from flask import Response, current_app, g, request
from flask_smorest import abort

from services.progress import queries
from services.progress.cmi5 import schemas as s
from services.progress.cmi5.lms import Cmi5Lms
from services.progress.cmi5.structure import PackageError
from shared import auth, http
from shared.auth import SECURITY, protect
from shared.http import Blueprint, accepts_any_body, html_page

blp = Blueprint("cmi5", __name__, url_prefix="/cmi5",
                description="cmi5 LMS: course packages, launches, waivers (operator credentials required)")
protect(blp)
public = Blueprint("cmi5-au", __name__, url_prefix="/cmi5",
                   description="cmi5 routes an AU calls: the fetch URL, the package's files")

_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
         "Access-Control-Allow-Headers": "Content-Type"}


def _lms() -> Cmi5Lms:
    return current_app.extensions["cmi5"]


@blp.route("/courses", methods=["POST"])
@blp.doc(security=SECURITY, requestBody={
    "required": True, "description": "a cmi5.xml, or a zip (ZIP64 too) holding cmi5.xml and the content",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}},
                "text/xml": {"schema": {"type": "string"}}}})
@blp.response(201, s.CourseSchema)
@blp.alt_response(400, description="the package breaks a cmi5 requirement (named, with the element)")
@accepts_any_body
def import_course():
    """Import a cmi5 package. Its AUs and blocks are the `required_modules` a programme is
    defined with; enrollment learns the course from the bus, so `POST /programmes` (or
    `PUT /programmes/<id>/cmi5-course`) there takes its `id` as `cmi5_course`"""
    try:
        return _lms().import_package(request.get_data(), request.content_type or "", g.operator)
    except PackageError as exc:
        abort(400, message=str(exc), errors={"package": {"requirement": exc.requirement, "element": exc.element}})


@blp.route("/courses/<course_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.CourseSchema)
def get_course(course_id):
    """An imported course: its AUs (with the LMS's activity ids), blocks and modules"""
    return _lms().describe(course_id, _lms().course(course_id))


@blp.route("/courses/<course_id>", methods=["DELETE"])
@blp.doc(security=SECURITY)
@blp.response(204)
def delete_course(course_id):
    """Remove an imported package and its files (its statements stay in the LRS)"""
    _lms().delete_course(course_id, g.operator)


@blp.route("/courses/<course_id>/launches", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.LaunchInSchema)
@blp.response(201, s.LaunchSchema)
def launch(data, course_id):
    """Launch an AU: a session, LMS.LaunchData, `launched`, and the launch URL"""
    if auth.current_principal().cohorts is not None:
        # An LMS client launches only for enrolments of the cohorts it is granted.
        registration = str(data["registration"]) if data["registration"] else None
        auth.require_cohort(registration and queries.cohort_of_registration(http.engine(), registration))
    result = _lms().launch(course_id, data["au"], data["actor"], root_url=request.host_url,
                           registration=str(data["registration"]) if data["registration"] else None,
                           launch_mode=data["launchMode"], return_url=data["returnURL"])
    return result.__dict__


@blp.route("/registrations/<registration>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.RegistrationSchema)
def get_registration(registration):
    """A registration's AUs: what each reported, whether satisfied"""
    return _lms().registration_state(registration)


@blp.route("/registrations/<registration>/waivers", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.WaiverInSchema)
@blp.response(201, s.WaiverSchema)
def waive(data, registration):
    """Waive an AU not yet satisfied: `waived`, then `satisfied` for what it completes. Before anyone has
    launched in the registration, give the learner's `actor` (and the `course`, unless the registration is an
    enrolment in a programme a course delivers)"""
    return {"session_id": _lms().waive(registration, data["au"], data["reason"], actor=data.get("actor"),
                                       course_pk=data.get("course"))}


@blp.route("/sessions/<session_id>/abandonment", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(204)
def abandon(session_id):
    """Abandon an open session: `abandoned`, and its token stops working"""
    _lms().abandon(session_id)


@public.route("/fetch/<token>", methods=["POST", "OPTIONS"])
@public.response(200)
@accepts_any_body
def fetch(token):
    """The fetch URL: the first POST gets the auth token, later ones the spec's error body"""
    if request.method == "OPTIONS":
        return Response(status=200, headers=_CORS)
    return Response(json.dumps(_lms().fetch(token)), mimetype="application/json", headers=_CORS)


@public.route("/content/<course_id>/<path:path>", methods=["GET"])
@public.response(200)
@html_page
def content(course_id, path):
    """A file of an imported zip package (what relative AU URLs launch)"""
    found = _lms().file(course_id, path)
    if found is None:
        abort(404, message="no such file in the package")
    data, content_type = found
    return Response(data, mimetype=content_type, headers={"Access-Control-Allow-Origin": "*"})
