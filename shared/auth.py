"""Who is calling: HTTP Basic (an account's key and secret) or an OIDC bearer token, and
whether their role may call the route (shared.permissions).

Every service checks the same accounts without sharing a database: each reads its own
`accounts` table (shared.account_tables), which the enrollment service writes and the
others project from the accounts topic. A process keeps a snapshot of that table,
re-read at most every ACCOUNTS_REFRESH_SECONDS, so a disabled key stops working
everywhere once the change is projected and the snapshot re-read: within seconds.
LEARNSTREAM_CREDENTIALS keys are the bootstrap administrators (campaign_admin; an
agency_operator of its unit when one is given); an account of the same key wins.

The dashboard's sign-in (session cookie) calls `check_secret` once and then
`principal_for_key` on each request; an app-level before_request that sets
`g.principal` is taken as signed in by `protect`.
"""
from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, g, request, session
from flask_smorest import abort
from sqlalchemy.engine import Engine

from shared import account_tables, permissions
from shared.accounts import (  # noqa: F401 (the role names, for callers of shared.auth)
    AGENCY_OPERATOR,
    AUDITOR,
    CAMPAIGN_ADMIN,
    LMS_CLIENT,
    PROGRAMME_MANAGER,
    Account,
    VerifiedSecrets,
)
from shared.config import Settings

log = logging.getLogger(__name__)

SECURITY = [{"basicAuth": []}, {"bearerAuth": []}]
EXTENSION = "learnstream_accounts"


@dataclass(frozen=True)
class Principal:
    key: str
    role: str
    # The units (agencies or provinces) an agency operator sees; None: every unit.
    units: frozenset[str] | None = None
    # xAPI scopes (LMS clients).
    scopes: frozenset[str] = frozenset()
    display_name: str = ""
    locale: str | None = None
    # The cohorts an LMS client may run final tests for; None: every cohort (other roles).
    cohorts: frozenset[str] | None = None
    # Where the principal came from: "account", "bootstrap" or "oidc".
    source: str = "account"

    def may(self, permission: str) -> bool:
        return permission in permissions.ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def visible_units(self) -> frozenset[str] | None:
        """The units whose data this principal may see; None: all."""
        return self.units if self.role == AGENCY_OPERATOR else None


def principal_of(account: Account) -> Principal:
    return Principal(key=account.key, role=account.role,
                     units=account.units if account.role == AGENCY_OPERATOR else None,
                     scopes=account.scopes, display_name=account.display_name, locale=account.locale,
                     cohorts=account.cohorts if account.role == LMS_CLIENT else None)


class AccountDirectory:
    """One process's view of the accounts: the service's `accounts` table, re-read at
    most every `refresh_seconds`, and the bootstrap keys of LEARNSTREAM_CREDENTIALS."""

    def __init__(self, engine: Engine | None, table: sa.Table | None, settings: Settings):
        self.engine, self.table = engine, table
        self.refresh_seconds = settings.accounts_refresh_seconds
        self._bootstrap_secrets = dict(settings.credentials)
        self._bootstrap = {
            key: Principal(key=key, role=AGENCY_OPERATOR if key in settings.operator_units else CAMPAIGN_ADMIN,
                           units=(frozenset({settings.operator_units[key]}) if key in settings.operator_units
                                  else None), display_name=key, source="bootstrap")
            for key in settings.credentials}
        self._snapshot: dict[str, tuple[Account, Principal]] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()
        self.verified = VerifiedSecrets()

    def refresh(self) -> None:
        """Re-read the accounts table now."""
        if self.engine is None or self.table is None:
            self._loaded_at = time.monotonic()
            return
        with self.engine.connect() as conn:
            accounts = account_tables.all_accounts(conn, self.table)
        self._snapshot = {a.key: (a, principal_of(a)) for a in accounts}
        self._loaded_at = time.monotonic()

    def _accounts(self) -> dict[str, tuple[Account, Principal]]:
        if time.monotonic() - self._loaded_at > self.refresh_seconds:
            with self._lock:
                if time.monotonic() - self._loaded_at > self.refresh_seconds:
                    self.refresh()
        return self._snapshot

    def check(self, key: str, secret: str) -> Principal | None:
        found = self._accounts().get(key)
        if found is None and key in self._bootstrap_secrets:
            ok = hmac.compare_digest(self._bootstrap_secrets[key].encode(), secret.encode())
            return self._bootstrap[key] if ok else None
        account, principal = found if found is not None else (None, None)
        stored = None if account is None or account.disabled else account.secret_hash
        return principal if self.verified.check(key, secret, stored) else None

    def account_check(self, key: str, secret: str) -> tuple[bool, Principal | None]:
        """For a caller with keys of its own (the LRS's clients): whether `key` is an
        account's (bootstrap keys are not), and if so its principal when the secret is right."""
        found = self._accounts().get(key)
        if found is None:
            return False, None
        return True, self.check(key, secret)

    def principal(self, key: str) -> Principal | None:
        found = self._accounts().get(key)
        if found is not None:
            return None if found[0].disabled else found[1]
        return self._bootstrap.get(key)


def directory() -> AccountDirectory:
    return current_app.extensions[EXTENSION]


def check_secret(key: str, secret: str) -> Principal | None:
    """The principal whose key and secret these are, or None (unknown, wrong or
    disabled). Constant time in the secret; a verified pair costs one HMAC after the first."""
    return directory().check(key, secret)


def principal_for_key(key: str) -> Principal | None:
    """The principal of a key signed in before (a session), or None once it is disabled or unknown."""
    return directory().principal(key)


def current_principal() -> Principal | None:
    return g.get("principal")


def authenticate() -> Principal | None:
    """The principal of the request's credentials (Basic, or Bearer when OIDC is
    configured), or None."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        verifier = current_app.extensions.get("learnstream_oidc")
        return verifier.principal(header[7:].strip()) if verifier is not None else None
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    return check_secret(auth.username, auth.password or "")


def require(permission: str) -> Principal:
    """The request's principal, if its role has `permission`; else 401 or 403 naming it."""
    principal = current_principal()
    if principal is None:
        _unauthorized()
    if not principal.may(permission):
        abort(403, message=f"this needs the permission {permission!r}, which the role {principal.role!r} "
                           "does not have")
    return principal


def has_role(*roles: str) -> bool:
    principal = current_principal()
    return principal is not None and principal.role in roles


def _unauthorized():
    # The dashboard's script says who it is (X-Requested-With): a challenge would make the
    # browser open its Basic prompt over the page, instead of the script going to sign-in.
    scripted = request.headers.get("X-Requested-With") == "XMLHttpRequest"
    abort(401, message="credentials required (HTTP Basic: account key and secret; or an OIDC bearer token)",
          headers={} if scripted else {"WWW-Authenticate": 'Basic realm="learnstream"'})


def protect(blueprint) -> None:
    """Require credentials on every route of the blueprint, and the permission
    shared.permissions gives the route; 403 names what is missing, never learner data."""

    @blueprint.before_request
    def _require_credentials():
        if request.method == "OPTIONS":
            return None
        principal = current_principal() or authenticate()
        if principal is None:
            _unauthorized()
        g.principal = principal
        g.operator = principal.key  # who, in the statements commands publish
        service = current_app.config["LEARNSTREAM_SETTINGS"].service
        reason = permissions.refusal(service, principal.role, request.method,
                                     request.url_rule.rule if request.url_rule else "")
        if reason is not None:
            abort(403, message=reason)
        return None


def require_cohort(cohort_id: str | None) -> None:
    """403 unless the request's principal may act for learners of this cohort (an LMS
    client: only the cohorts it is granted; None, an enrolment not known: refused)."""
    principal = current_principal()
    granted = None if principal is None else principal.cohorts
    if granted is not None and cohort_id not in granted:
        abort(403, message="this LMS client is not granted the cohort of this enrolment")


def visible_units() -> frozenset[str] | None:
    """The units the request's principal may see (None: every unit)."""
    principal = current_principal()
    return None if principal is None else principal.visible_units


# --- the operators' session (shared.web_session: the dashboard and the admin pages) -------

# The session key holding the signed-in operator's key.
SESSION_KEY = "operator"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def session_principal() -> Principal | None:
    """The dashboard's signed-in operator, looked up again on every request so that a
    key disabled since sign-in stops working at once. Only for a request from the
    dashboard's own pages: a browser says `Sec-Fetch-Site: cross-site` for a request
    another site started, and SameSite=Lax keeps the cookie off most of those anyway."""
    key = session.get(SESSION_KEY)
    if not key or request.headers.get("Sec-Fetch-Site") == "cross-site":
        return None
    return principal_for_key(key)


def bind(principal: Principal) -> None:
    """The request acts for `principal`: `g.principal`, and `g.operator` (its key, which
    commands record as who did it). `protect` takes a principal bound before it as
    signed in, and still asks the permission table."""
    g.principal = principal
    g.operator = principal.key
