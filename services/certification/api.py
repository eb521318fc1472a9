"""Certification operator routes (credentials required): thin; commands in commands.py, reads in queries.py."""
from __future__ import annotations

from flask import Response, current_app, g, stream_with_context

from services.certification import export, pdf, queries
from services.certification import schemas as s
from services.certification.commands import CertificationCommands
from shared import http, i18n
from shared.auth import SECURITY, protect, visible_units
from shared.http import Blueprint, attachment

blp = Blueprint("certification", __name__, url_prefix="/",
                description="Certificates, revocation, re-issue, exports and issuance rules "
                            "(operator credentials required)")
protect(blp)


def _commands() -> CertificationCommands:
    return http.commands()


def _public_url() -> str:
    return current_app.config["CERTIFICATION_PUBLIC_URL"]


@blp.route("/certificates", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.CertificateListArgs, location="query")
@blp.response(200, s.CertificatePageSchema)
def list_certificates(args):
    """List and search certificates by programme, cohort, organisation, status, issue date, name or number"""
    return queries.certificates(http.engine(), args, _public_url(), visible_units())


@blp.route("/certificates/<certificate_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.CertificateSchema)
def get_certificate(certificate_id):
    """Fetch a certificate"""
    return queries.certificate(http.engine(), certificate_id, _public_url(), visible_units())


@blp.route("/certificates/<certificate_id>.pdf", methods=["GET"])
@blp.doc(security=SECURITY, responses={"200": {"description": "the certificate",
                                               "content": {"application/pdf": {}}}})
def get_certificate_pdf(certificate_id):
    """The printable certificate (PDF, with a QR code to its verification page)"""
    cert = queries.certificate(http.engine(), certificate_id, _public_url(), visible_units())
    return Response(pdf.render(cert, cert["verification_url"]), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{cert["number"]}.pdf"'})


@blp.route("/certificates/<certificate_id>/revocation", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.arguments(s.RevocationSchema)
@blp.response(200, s.CertificateSchema)
def revoke(data, certificate_id):
    """Revoke a certificate, with the reason; publishes a `revoked` statement. 409 if already revoked"""
    _commands().revoke(certificate_id, data["reason"], g.operator)
    return queries.certificate(http.engine(), certificate_id, _public_url())


@blp.route("/certificates/<certificate_id>/reissue", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(201, s.CertificateSchema)
def reissue(certificate_id):
    """Re-issue a revoked certificate: a new number and verification code; publishes `earned`.
    409 while the learner holds a valid certificate of the programme"""
    new_id = _commands().reissue(certificate_id, g.operator)
    return queries.certificate(http.engine(), new_id, _public_url())


def _export_filter(cohort_id: str, status: str):
    queries.require_cohort(http.engine(), cohort_id, visible_units())  # before the stream: a 404 must be whole
    return queries.cohort_certificates(http.engine(), cohort_id, status, _public_url())


@blp.route("/cohorts/<cohort_id>/certificates.csv", methods=["GET"])
@blp.doc(security=SECURITY, responses={"200": {"description": "CSV", "content": {"text/csv": {}}}})
@blp.arguments(s.ExportArgs, location="query")
def export_csv(args, cohort_id):
    """A cohort's certificates as a CSV list (status=active by default, or revoked, or all)"""
    lines = export.csv_lines(_export_filter(cohort_id, args["status"]), i18n.csv_headers(export.CSV_COLUMNS))
    return Response(stream_with_context(lines), mimetype="text/csv", headers={
        "Content-Disposition": attachment(f"certificates-{cohort_id}.csv")})


@blp.route("/cohorts/<cohort_id>/certificates.zip", methods=["GET"])
@blp.doc(security=SECURITY, responses={"200": {"description": "zip", "content": {"application/zip": {}}}})
@blp.arguments(s.ExportArgs, location="query")
def export_zip(args, cohort_id):
    """A cohort's certificates as PDFs in a zip, with certificates.csv listing them (streamed)"""
    chunks = export.zip_stream(_export_filter(cohort_id, args["status"]), i18n.csv_headers(export.CSV_COLUMNS))
    return Response(stream_with_context(chunks), mimetype="application/zip", headers={
        "Content-Disposition": attachment(f"certificates-{cohort_id}.zip")})


@blp.route("/standings", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(s.StandingListArgs, location="query")
@blp.response(200, s.StandingPageSchema)
def list_standings(args):
    """Each enrolment's standing under the rule: qualified, in_progress, late (past the deadline and
    grace without qualifying, decided by the clock) or withdrawn"""
    return queries.standings(http.engine(), args, _commands().clock(), visible_units())


@blp.route("/programmes/<programme_id>/rules", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, s.RulesSchema)
def get_rules(programme_id):
    """A programme's issuance rules (grace period)"""
    return queries.rules(http.engine(), programme_id)


@blp.route("/programmes/<programme_id>/rules", methods=["PUT"])
@blp.doc(security=SECURITY)
@blp.arguments(s.RulesInSchema)
@blp.response(200, s.RulesSchema)
def put_rules(data, programme_id):
    """Set a programme's issuance rules; applied at once to learners not yet certified and to every
    later decision. Certificates already issued stand"""
    return _commands().set_rules(programme_id, data["grace_days"], g.operator)
