"""Public verification (no credentials): by verification code, valid / revoked / unknown,
and only what a verifier needs (number, name, programme, date)."""
from __future__ import annotations

from flask import current_app, render_template
from flask_smorest import Blueprint

from services.certification import schemas as s
from services.certification import views

blp = Blueprint("verification", __name__, url_prefix="/", template_folder="templates",
                description="Public certificate verification (no credentials)")

_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _lookup(code: str) -> tuple[dict, int]:
    found = views.verification(current_app.config["LEARNSTREAM_ENGINE"], code)
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


@blp.route("/verify/<code>", methods=["GET"])
@blp.doc(responses={"200": {"description": "HTML page", "content": {"text/html": {}}}})
def verify_page(code):
    """Verify a certificate (HTML page; the QR code on the certificate points here)"""
    found, status = _lookup(code)
    return render_template("verify.html", result=found), status, {**_HEADERS, "Content-Type": "text/html"}
