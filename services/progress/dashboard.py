"""The operator dashboard's pages: sign-in, the campaign and cohort pages, sign-out and
the language switch. The pages are HTML over the progress JSON API (api.py), which the
page's script calls with the same session cookie.

Signing in sets Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure over https
or when DASHBOARD_SECURE_COOKIES says so); it holds the operator's key only, and the key
is looked up again on every request (shared.auth.session_principal). Every form posts
a CSRF token (shared.csrf). Basic credentials still open the pages, for scripts.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_smorest import abort

from services.progress import queries
from shared import csrf, http, i18n, permissions
from shared.auth import SAFE_METHODS, SESSION_KEY, authenticate, bind, check_secret, session_principal
from shared.config import VAR_DIR, Settings
from shared.http import accepts_any_body, html_page

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf.protect(bp)

SESSION_LIFETIME = timedelta(hours=12)  # a working day: a cookie left on a shared PC expires
SECRET_FILE = "dashboard-session-secret"


class _SessionCookies(SecureCookieSessionInterface):
    """Secure when the request came over https (a TLS proxy says so with
    X-Forwarded-Proto only if the deployment trusts it) or when configured."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(app: Flask, settings: Settings) -> None:
    app.secret_key = settings.dashboard_session_secret or _generated_secret(VAR_DIR / SECRET_FILE)
    app.session_interface = _SessionCookies()
    app.config.update(SESSION_COOKIE_NAME="learnstream_dashboard", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.dashboard_secure_cookies,
                      PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME)
    app.register_blueprint(bp)

    @app.before_request
    def _session_reads():
        # The page's script reads the JSON API with the session cookie: reads only (a
        # change always needs credentials of its own), and the route's permission is
        # still asked by shared.auth.protect, which takes this principal as signed in.
        if request.method in SAFE_METHODS and "Authorization" not in request.headers:
            principal = session_principal()
            if principal is not None:
                bind(principal)


def _generated_secret(path: Path) -> str:
    """A development default made once and kept under var/ (mode 0600), so that every
    gunicorn worker and a restart sign the same cookies. Written aside and linked into
    place: a worker starting at the same moment reads a whole key, never half of one."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        os.link(aside, path)
    except FileExistsError:
        pass  # another worker won: use its key
    finally:
        aside.unlink()
    return path.read_text().strip()


def _signed_in():
    """The page's principal (session, or Basic or a bearer token for scripts), bound to the
    request; None: send the browser to the sign-in page. A role the page is not for (an
    LMS client) is refused as the JSON API would refuse it (shared.permissions)."""
    principal = session_principal() or authenticate()
    if principal is None:
        return None
    bind(principal)
    reason = permissions.refusal(current_app.config["LEARNSTREAM_SETTINGS"].service, principal.role,
                                 request.method, request.url_rule.rule)
    if reason is not None:
        abort(403, message=reason)
    return principal


def _to_sign_in():
    return redirect(url_for("dashboard.sign_in", next=request.full_path.rstrip("?")))


def _page(page: str, cohort_id: str = ""):
    return render_template("dashboard.html", page=page, cohort_id=cohort_id, principal=g.principal,
                           messages=script_messages(), states=state_labels(), locale=i18n.current_locale())


@bp.route("", methods=["GET"])
@html_page
def campaign():
    if _signed_in() is None:
        return _to_sign_in()
    return _page("campaign")


@bp.route("/cohorts/<cohort_id>", methods=["GET"])
@html_page
def cohort(cohort_id):
    principal = _signed_in()
    if principal is None:
        return _to_sign_in()
    queries.cohort(http.engine(), cohort_id, current_app.extensions["progress_clock"](), principal.visible_units)
    return _page("cohort", cohort_id)


def _safe_next(target: str | None) -> str:
    # Only a path of this dashboard: never an open redirect to another site.
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return url_for("dashboard.campaign")


@bp.route("/sign-in", methods=["GET", "POST"])
@html_page
@accepts_any_body
def sign_in():
    error = None
    if request.method == "POST":
        principal = check_secret(request.form.get("key", ""), request.form.get("secret", ""))
        if principal is not None:
            locale = session.get(i18n.SESSION_LOCALE)
            session.clear()  # a new session on sign-in: nothing planted before it survives
            session.permanent = True
            session[SESSION_KEY] = principal.key
            if locale:
                session[i18n.SESSION_LOCALE] = locale
            return redirect(_safe_next(request.args.get("next")))
        error = _("Wrong key or secret.")
    status = 401 if error else 200
    return render_template("sign_in.html", error=error, locale=i18n.current_locale(),
                           next=request.args.get("next", "")), status


@bp.route("/sign-out", methods=["POST"])
@accepts_any_body
def sign_out():
    locale = session.get(i18n.SESSION_LOCALE)
    session.clear()
    if locale:
        session[i18n.SESSION_LOCALE] = locale
    return redirect(url_for("dashboard.sign_in"))


@bp.route("/language", methods=["POST"])
@accepts_any_body
def language():
    chosen = request.form.get("locale")
    if chosen in i18n.LOCALES:
        session[i18n.SESSION_LOCALE] = chosen
    return redirect(_safe_next(request.form.get("next")))


# What the page's script shows, translated here: the script has no catalog of its own.
SCRIPT_MESSAGES = {
    "enrolled": lazy_gettext("Enrolled"), "started": lazy_gettext("Started"),
    "modules_completed": lazy_gettext("Modules done"), "passed": lazy_gettext("Passed"),
    "failed": lazy_gettext("Failed"), "certified": lazy_gettext("Certified"), "overdue": lazy_gettext("Overdue"),
    "withdrawn": lazy_gettext("Withdrawn"), "withdrawn_mark": lazy_gettext("withdrawn"),
    "not_attempted": lazy_gettext("not attempted"), "in_progress": lazy_gettext("in progress"),
    "passed_test": lazy_gettext("passed"), "failed_test": lazy_gettext("failed"),
    "page": lazy_gettext("page %(page)s of %(pages)s · %(total)s learners"),
    "updated": lazy_gettext("live · updated %(time)s"), "update_failed": lazy_gettext("update failed: %(error)s"),
}

STATES = {
    "not_started": lazy_gettext("not started"), "in_progress": lazy_gettext("in progress"),
    "modules_completed": lazy_gettext("modules completed"), "passed": lazy_gettext("passed"),
    "failed": lazy_gettext("failed"), "certified": lazy_gettext("certified"), "overdue": lazy_gettext("overdue"),
    "withdrawn": lazy_gettext("withdrawn"),
}


def script_messages() -> dict[str, str]:
    return {key: str(text) for key, text in SCRIPT_MESSAGES.items()}


def state_labels() -> dict[str, str]:
    return {key: str(text) for key, text in STATES.items()}
