"""The operator's language: Vietnamese or English, for the dashboard, the certificate
(page and PDF) and the CSV headers (Flask-Babel, one catalog in shared/translations).

The locale is, in order: the one picked with the dashboard's language switch (kept in
its session), the signed-in principal's own, the browser's `Accept-Language`, English.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import Babel, get_locale, pgettext

LOCALES = ("en", "vi")
DEFAULT_LOCALE = "en"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
# The operators' session's key for the language switch (services/progress/dashboard.py).
SESSION_LOCALE = "locale"


def select_locale() -> str:
    if not has_request_context():
        return DEFAULT_LOCALE
    chosen = session.get(SESSION_LOCALE) if _has_session() else None
    if chosen in LOCALES:
        return chosen
    principal = g.get("principal")
    if principal is not None and principal.locale in LOCALES:
        return principal.locale
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def _has_session() -> bool:
    # Only an app with a secret key (shared.web_session: progress's dashboard, enrollment's
    # admin pages) has a session to read.
    return bool(current_app.secret_key)


def install(app: Flask) -> None:
    app.config.update(BABEL_DEFAULT_LOCALE=DEFAULT_LOCALE, BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)


def current_locale() -> str:
    """The request's locale as a language code ("en" outside a request)."""
    if not has_request_context():
        return DEFAULT_LOCALE
    return str(get_locale() or DEFAULT_LOCALE)


def csv_headers(columns) -> list[str]:
    """The header row of an export in the request's language. In English the columns'
    own names (`learner_name`, ...), as exports always had: scripts that read them by
    name go on working; in Vietnamese, words for people (catalog context "csv")."""
    return [pgettext("csv", column) for column in columns]
