"""The accounts' admin pages (/admin/accounts): list, create, change, rotate a secret,
disable; LRS clients are accounts of the role lms_client with xAPI scopes. HTML forms
over the same AccountCommands as the admin API (api.py), one unit of work per command;
the routes only read the form and render.

The operator signs in on the dashboard (progress): the session cookie is shared
(shared.web_session), and a signed-out browser is sent to the dashboard's sign-in page,
which brings it back here. Who may do what is shared.permissions' table (auditors read,
campaign administrators manage); every form posts a CSRF token (shared.csrf).
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_smorest import abort
from marshmallow import ValidationError

from services.enrollment import queries
from services.enrollment import schemas as s
from services.enrollment.account_commands import AccountCommands
from shared import accounts, csrf, http, i18n, permissions, web_session
from shared.auth import authenticate, bind, session_principal
from shared.errors import DomainError
from shared.http import accepts_any_body, html_page

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")


@bp.before_request
def _signed_in():
    """Before the CSRF check (below): a signed-out browser goes to sign-in, a role without
    the route's permission gets 403, whatever it posted."""
    if request.endpoint == "admin.static":
        return None
    settings = current_app.config["LEARNSTREAM_SETTINGS"]
    principal = session_principal() or authenticate()
    if principal is None:
        back = request.full_path.rstrip("?") if request.method == "GET" else url_for("admin.accounts_page")
        return web_session.sign_in_redirect(settings, settings.public_url + back)
    bind(principal)
    reason = permissions.refusal(settings.service, principal.role, request.method,
                                 request.url_rule.rule if request.url_rule else "")
    if reason is not None:
        abort(403, message=reason)
    return None


csrf.protect(bp)


ROLE_NAMES = {
    accounts.CAMPAIGN_ADMIN: lazy_gettext("campaign administrator"),
    accounts.PROGRAMME_MANAGER: lazy_gettext("programme manager"),
    accounts.AGENCY_OPERATOR: lazy_gettext("agency operator"), accounts.AUDITOR: lazy_gettext("auditor"),
    accounts.LMS_CLIENT: lazy_gettext("LMS client (LRS)"),
}


def _commands() -> AccountCommands:
    return current_app.extensions["account_commands"]


def _render(template: str, status: int = 200, **context):
    settings = current_app.config["LEARNSTREAM_SETTINGS"]
    page = render_template(
        template, principal=g.principal, may_manage=g.principal.may(permissions.MANAGE_ACCOUNTS),
        locale=i18n.current_locale(), roles=accounts.ROLES, scopes=accounts.XAPI_SCOPES,
        role_names={role: str(name) for role, name in ROLE_NAMES.items()},
        dashboard_url=settings.url_of("progress") + "/dashboard", here=settings.public_url + request.path,
        **context)
    # A page may show a secret: never kept by the browser or a proxy.
    return page, status, {"Cache-Control": "no-store"}


def _names(field: str) -> list[str]:
    return [name.strip() for name in request.form.get(field, "").replace("\n", ",").split(",") if name.strip()]


def _posted() -> dict:
    """The form as the admin API's JSON body."""
    form = request.form
    data = {"role": form.get("role", ""), "units": _names("units"), "cohorts": _names("cohorts"),
            "scopes": form.getlist("scopes"), "locale": form.get("locale") or None}
    for optional in ("key", "display_name"):
        if form.get(optional, "").strip():
            data[optional] = form[optional].strip()
    return data


def _form(schema) -> dict:
    """The form, checked by the admin API's schema."""
    return schema.load(_posted())


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{name}: {' '.join(map(str, m if isinstance(m, list) else [m]))}"
                         for name, m in exc.messages.items())
    return exc.message


def _list_page(status: int = 200, **context):
    listed = queries.accounts(http.engine(), {"page": 1, "page_size": 500})
    context.setdefault("form_values", {})
    return _render("accounts.html", status, accounts=listed["items"], total=listed["total"], **context)


@bp.route("/accounts", methods=["GET"])
@html_page
def accounts_page():
    return _list_page()


@bp.route("/accounts", methods=["POST"])
@html_page
@accepts_any_body
def create_account():
    try:
        account, secret = _commands().create(_form(s.AccountInSchema()), g.operator)
    except (ValidationError, DomainError) as exc:
        return _list_page(422, error=_problem(exc), form_values=_posted())
    return _list_page(201, created=account.as_public(), secret=secret)


@bp.route("/accounts/<key>", methods=["GET"])
@html_page
def account_page(key):
    return _render("account.html", account=queries.account(http.engine(), key),
                   notice=_("Saved.") if request.args.get("changed") else None)


@bp.route("/accounts/<key>", methods=["POST"])
@html_page
@accepts_any_body
def change_account(key):
    try:
        _commands().change(key, _form(s.AccountChangeSchema()), g.operator)
    except (ValidationError, DomainError) as exc:
        return _render("account.html", 422, account=queries.account(http.engine(), key), error=_problem(exc))
    return redirect(url_for("admin.account_page", key=key, changed=1), 303)


@bp.route("/accounts/<key>/secret", methods=["POST"])
@html_page
@accepts_any_body
def rotate_secret(key):
    account, secret = _commands().rotate_secret(key, g.operator)
    return _render("account.html", account=account.as_public(), secret=secret,
                   notice=_("A new secret: the old one no longer works."))


@bp.route("/accounts/<key>/disable", methods=["POST"])
@html_page
@accepts_any_body
def disable_account(key):
    _commands().disable(key, g.operator)
    return redirect(url_for("admin.account_page", key=key), 303)
