"""The operator dashboard's pages: sign-in, the campaign and cohort pages, sign-out and
the language switch. The pages are HTML over the progress JSON API (api.py), which the
page's script calls with the same session cookie.

Signing in sets the operators' session cookie (shared.web_session: HttpOnly,
SameSite=Lax, Secure over https or when DASHBOARD_SECURE_COOKIES says so); it holds the
operator's key only, and the key is looked up again on every request. The same sign-in
opens enrollment's admin pages for accounts (/admin/accounts), which send a signed-out
browser here. Every form posts a CSRF token (shared.csrf). Basic credentials still open
the pages, for scripts.
"""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_smorest import abort

from services.progress import queries
from shared import csrf, http, i18n, permissions, web_session
from shared.auth import SESSION_KEY, authenticate, bind, check_secret, session_principal
from shared.config import Settings
from shared.http import accepts_any_body, html_page

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf.protect(bp)


def install(app: Flask, settings: Settings) -> None:
    web_session.install(app, settings)  # the session cookie, shared with enrollment's admin pages
    app.register_blueprint(bp)


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
                           messages=script_messages(), states=state_labels(), locale=i18n.current_locale(),
                           accounts_url=_accounts_url(g.principal))


def _accounts_url(principal) -> str | None:
    """Enrollment's admin pages, for a role that may read the accounts."""
    if not principal.may(permissions.READ_ACCOUNTS):
        return None
    return current_app.config["LEARNSTREAM_SETTINGS"].url_of("enrollment") + ADMIN_PATH


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


ADMIN_PATH = "/admin/accounts"  # enrollment's admin pages (services/enrollment/admin.py)


def _safe_next(target: str | None) -> str:
    # Only a page of this dashboard or enrollment's admin pages (on this origin, or at
    # enrollment's public URL): never an open redirect to another site.
    if target and not target.startswith("//"):
        admin = (ADMIN_PATH, current_app.config["LEARNSTREAM_SETTINGS"].url_of("enrollment") + ADMIN_PATH)
        if target.startswith("/dashboard") or any(
                target == page or target.startswith((f"{page}/", f"{page}?")) for page in admin):
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
    # A cmi5 course's AUs in the learner table (moveon.AU_STATES).
    "au_not_attempted": lazy_gettext("not attempted"), "au_in_progress": lazy_gettext("in progress"),
    "au_abandoned": lazy_gettext("abandoned"), "au_failed": lazy_gettext("failed"),
    "au_satisfied": lazy_gettext("satisfied"), "au_waived": lazy_gettext("waived"),
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
