"""CSRF protection for the dashboard's forms (sign-in, sign-out, language).

A random token per session, put in every form (`csrf_token()` in templates) and checked
on every POST of the blueprints given: a page on another site can make the browser post
a form with the session cookie (SameSite=Lax lets a top-level POST's cookie through in
some browsers for two minutes after it was set), but it cannot read the token.
The sign-in form needs one too, so nobody can sign a browser in as someone else.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import escape

SESSION_TOKEN = "csrf"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def csrf_token() -> str:
    token = session.get(SESSION_TOKEN)
    if not token:
        token = session[SESSION_TOKEN] = secrets.token_urlsafe(32)
    return token


def protect(blueprint: Blueprint) -> None:
    """Every POST, PUT, PATCH and DELETE of the blueprint must carry the session's token
    (form field or header); otherwise 400 before the view runs, so nothing changes. The
    answer is a short page for the person at the browser, in their language."""

    @blueprint.before_request
    def _check_csrf():
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        expected = session.get(SESSION_TOKEN)
        sent = request.form.get(FORM_FIELD) or request.headers.get(HEADER) or ""
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            message = _("The form's security token (CSRF) is missing or wrong: go back, reload the page and try again.")
            page = (f'<!doctype html><html lang="{escape(str(get_locale()))}"><meta charset="utf-8">'
                    f'<title>400</title><p style="font: 16px system-ui, sans-serif; margin: 2rem">'
                    f'{escape(message)}</p>')
            return page, 400, {"Content-Type": "text/html; charset=utf-8"}
        return None

    blueprint.app_context_processor(lambda: {"csrf_token": csrf_token})
