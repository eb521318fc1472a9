"""Operator credentials: who is asking (a `Principal`), by HTTP Basic or the dashboard's
signed session cookie.

Every endpoint that reads or writes learner data sits behind `protect(blueprint)`.
Secrets are compared in constant time and never logged.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import current_app, g, request, session
from flask_smorest import abort

SECURITY = [{"basicAuth": []}]

CAMPAIGN_ADMIN = "campaign_admin"
PROGRAMME_MANAGER = "programme_manager"
AGENCY_OPERATOR = "agency_operator"
AUDITOR = "auditor"
LMS_CLIENT = "lms_client"

# The session key holding the signed-in operator's key (services/progress/dashboard.py).
SESSION_KEY = "operator"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. `units` None: every unit."""

    key: str
    role: str
    units: frozenset[str] | None = None
    scopes: frozenset[str] = frozenset()
    display_name: str = ""
    locale: str | None = None


# --- Bootstrap accounts from LEARNSTREAM_CREDENTIALS (key:secret[:unit]) -------------
# The accounts work of issue 14 (branch `accounts`) replaces this section with accounts
# managed at run time; the three names below are the interface the rest of the code uses.

def _settings():
    return current_app.config["LEARNSTREAM_SETTINGS"]


def principal_for_key(key: str) -> Principal | None:
    """The principal a key stands for now; None if the key is unknown (or disabled)."""
    settings = _settings()
    if key not in settings.credentials:
        return None
    unit = settings.operator_units.get(key)
    if unit is None:
        return Principal(key=key, role=CAMPAIGN_ADMIN, display_name=key)
    return Principal(key=key, role=AGENCY_OPERATOR, units=frozenset({unit}), display_name=key)


def check_secret(key: str, secret: str) -> Principal | None:
    """The principal for a key and its secret; None if either is wrong."""
    expected = _settings().credentials.get(key)
    # Compare even for unknown keys so timing does not reveal which keys exist.
    ok = hmac.compare_digest((expected or "\0").encode(), (secret or "").encode())
    return principal_for_key(key) if ok and expected is not None else None

# --- end of the bootstrap section ----------------------------------------------------


def basic_principal() -> Principal | None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    return check_secret(auth.username, auth.password or "")


def session_principal() -> Principal | None:
    """The dashboard's signed-in operator, looked up again on every request so that a
    key disabled since sign-in stops working at once. Only for a request from the
    dashboard's own pages: a browser says `Sec-Fetch-Site: cross-site` for a request
    another site started, and SameSite=Lax keeps the cookie off most of those anyway."""
    key = session.get(SESSION_KEY)
    if not key or request.headers.get("Sec-Fetch-Site") == "cross-site":
        return None
    return principal_for_key(key)


def authenticate() -> str | None:
    """The key of a request's valid Basic credentials, or None."""
    principal = basic_principal()
    return principal.key if principal else None


def unit_limit(principal: Principal) -> str | None:
    """The one unit the APIs that filter by a single unit use; None: every unit."""
    return None if principal.units is None else ",".join(sorted(principal.units))


def protect(blueprint, units_aware: bool = False, session_reads: bool = False) -> None:
    """Require operator credentials on every route of the blueprint.

    A key limited to organisation units is let in only where the blueprint filters by
    unit (`units_aware`); elsewhere it gets 403 rather than seeing every unit.
    `session_reads`: the dashboard's session cookie is accepted too, on reads only (the
    dashboard's script calls these APIs); a change always needs Basic credentials.
    """

    @blueprint.before_request
    def _require_credentials():
        if request.method == "OPTIONS":
            return None
        principal = basic_principal()
        if principal is None and session_reads and request.method in SAFE_METHODS:
            principal = session_principal()
        if principal is None:
            # The dashboard's script says who it is: a challenge would make the browser
            # open its Basic prompt over the page, instead of the script going to sign-in.
            scripted = request.headers.get("X-Requested-With") == "XMLHttpRequest"
            abort(401, message="credentials required (HTTP Basic: operator key and secret)",
                  headers={} if scripted else {"WWW-Authenticate": 'Basic realm="learnstream"'})
        bind(principal)
        if principal.units is not None and not units_aware:
            abort(403, message=f"this key is limited to the unit {unit_limit(principal)!r}; "
                               "this API needs a campaign operator's key")
        return None


def bind(principal: Principal) -> None:
    """The request acts for `principal`: `g.principal`, and `g.operator` (its key, which
    commands record as who did it)."""
    g.principal = principal
    g.operator = principal.key
    g.operator_units = principal.units
