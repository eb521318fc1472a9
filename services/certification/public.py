"""Public verification (no credentials): by verification code, valid / revoked / unknown,
and only what a verifier needs (number, name, programme, date)."""
from __future__ import annotations

from flask import jsonify, render_template, request
from flask_smorest import Blueprint

from services.certification import queries
from services.certification import schemas as s
from shared import http, i18n

blp = Blueprint("verification", __name__, url_prefix="/", template_folder="templates",
                description="Public certificate verification (no credentials)")

_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _lookup(code: str) -> tuple[dict, int]:
    found = queries.verification(http.engine(), code)
    return found, 404 if found["status"] == "unknown" else 200


@blp.route("/verify/<code>.json", methods=["GET"])
@blp.response(200, s.VerificationSchema)
@blp.alt_response(404, schema=s.VerificationSchema, description="unknown code")
def verify_json(code):
    """Verify a certificate (JSON)"""
    found, status = _lookup(code)
    return found, status, _HEADERS


@blp.route("/api/verify/<code>", methods=["GET"])
@blp.response(200, s.VerificationSchema)
@blp.alt_response(404, schema=s.VerificationSchema, description="unknown code")
def verify_api(code):
    """Verify a certificate (JSON; the same as /verify/<code>.json)"""
    found, status = _lookup(code)
    return found, status, _HEADERS


_BOTH = {"text/html": {"schema": {"type": "string"}}, "application/json": {"schema": s.VerificationSchema}}


@blp.route("/verify/<code>", methods=["GET"])
@blp.doc(responses={
    "200": {"description": "The certificate's standing: an HTML page for a browser, JSON for "
                           "`Accept: application/json`", "content": _BOTH},
    "404": {"description": "unknown code (HTML or JSON, as for 200)", "content": _BOTH}})
def verify_page(code):
    """Verify a certificate (the QR code on the certificate points here; HTML or JSON by Accept)"""
    found, status = _lookup(code)
    # The QR code's link is the one address a verifier has: a program asking for JSON gets
    # JSON, found or not, and a browser (or anything not asking for JSON) the page.
    headers = {**_HEADERS, "Vary": "Accept"}
    if request.accept_mimetypes.best_match(("text/html", "application/json")) == "application/json":
        return jsonify(s.VerificationSchema().dump(found)), status, headers
    # The page is in the reader's language (Accept-Language), so caches key on it too.
    page = render_template("verify.html", result=found, locale=i18n.current_locale())
    return page, status, {**headers, "Vary": "Accept, Accept-Language", "Content-Type": "text/html"}
