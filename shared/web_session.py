"""The operators' browser session, shared by the dashboard (progress, /dashboard) and the
accounts' admin pages (enrollment, /admin/accounts): one sign-in for both.

Flask's signed session cookie `learnstream_dashboard` (HttpOnly, SameSite=Lax, Secure
over https or when DASHBOARD_SECURE_COOKIES says so) holds the operator's key only; the
key is looked up again on every request (shared.auth.session_principal). Cookies are not
port-specific, so every app that installs this with the same secret
(DASHBOARD_SESSION_SECRET, or the key generated once under var/) reads the sign-in made
on progress's /dashboard/sign-in: on one machine at two ports, or behind one reverse
proxy on one origin.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, redirect, request
from flask.sessions import SecureCookieSessionInterface
from jinja2 import ChoiceLoader, FileSystemLoader

from shared.auth import SAFE_METHODS, bind, session_principal
from shared.config import VAR_DIR, Settings
from shared.secrets import kept_key

COOKIE_NAME = "learnstream_dashboard"
SESSION_LIFETIME = timedelta(hours=12)  # a working day: a cookie left on a shared PC expires
SECRET_FILE = "dashboard-session-secret"
SIGN_IN_PATH = "/dashboard/sign-in"  # served by progress (services/progress/dashboard.py)
# The session's pages' common templates (session/layout.html, _language.html, _sign_out.html).
TEMPLATES = Path(__file__).resolve().parent / "templates"


class _SessionCookies(SecureCookieSessionInterface):
    """Secure when the request came over https (a TLS proxy says so with
    X-Forwarded-Proto only if the deployment trusts it) or when configured."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(app: Flask, settings: Settings) -> None:
    """The session cookie, the session's templates and, on reads, the signed-in operator
    bound to the request."""
    app.jinja_loader = ChoiceLoader([loader for loader in (app.jinja_loader, FileSystemLoader(TEMPLATES)) if loader])
    app.secret_key = settings.dashboard_session_secret or kept_key(
        VAR_DIR / SECRET_FILE, lambda: secrets.token_urlsafe(48))
    app.session_interface = _SessionCookies()
    app.config.update(SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.dashboard_secure_cookies,
                      PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME)

    @app.before_request
    def _session_reads():
        # The pages' scripts read the JSON API with the session cookie: reads only (a
        # change always needs credentials of its own, or a page's form with its CSRF
        # token), and the route's permission is still asked by shared.auth.protect,
        # which takes this principal as signed in.
        if request.method in SAFE_METHODS and "Authorization" not in request.headers:
            principal = session_principal()
            if principal is not None:
                bind(principal)


def sign_in_redirect(settings: Settings, back_to: str):
    """Send a signed-out browser to the dashboard's sign-in page (on progress), which
    brings it back to `back_to` (a URL under this service's public URL) once signed in."""
    return redirect(f"{settings.url_of('progress')}{SIGN_IN_PATH}?{urlencode({'next': back_to})}")


