"""Accounts: who may call learnstream, as plain data (no Flask, SQLAlchemy or Kafka).

An account is a key, a hashed secret, a role, the units (agencies or provinces) an
agency operator is limited to, the cohorts an LMS client is granted, xAPI scopes, a
display name and a locale. The enrollment service owns them (services/enrollment,
accounts commands) and tells every change on the `learnstream.accounts.v1` topic as an
`account.changed` statement carrying the account's whole state, secret hash included;
every other service projects that topic into its own `accounts` table
(shared.account_tables). docs/accounts.md says why.

Secrets are scrypt hashes with a random salt. Checking scrypt costs tens of
milliseconds, so `VerifiedSecrets` remembers, per process, a keyed digest (HMAC with a
per-process random key) of each (key, secret) pair already verified against one stored
hash: a later request with the same pair costs one HMAC, and a rotated secret or a
disabled account no longer matches, because the stored hash or the account changed.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared import xapi
from shared.errors import Conflict, DomainError
from shared.events import Event, EventType

CAMPAIGN_ADMIN = "campaign_admin"
PROGRAMME_MANAGER = "programme_manager"
AGENCY_OPERATOR = "agency_operator"
AUDITOR = "auditor"
LMS_CLIENT = "lms_client"
ROLES = (CAMPAIGN_ADMIN, PROGRAMME_MANAGER, AGENCY_OPERATOR, AUDITOR, LMS_CLIENT)

# xAPI scopes an LMS client's account may hold (the LRS's own, services/progress/lrs/auth.py).
XAPI_SCOPES = ("statements/write", "statements/read", "statements/read/mine", "statements/void/any", "state",
               "define", "profile", "all/read", "all")
LOCALES = ("vi", "en")

ACCOUNT_ACTIVITY_TYPE = f"{xapi.PROJECT_IRI}/activity-types/account"
EXT_ACCOUNT = f"{xapi.EXT}/account"
ACCOUNTS_IRI = "https://learnstream.dev/accounts/"
AUTHORITY = xapi.service_agent("enrollment")

_N, _R, _P = 2**14, 8, 1


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    derived = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${derived.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant time in the secret; False for a hash that is not one of ours."""
    try:
        _, n, r, p, salt, expected = stored.split("$")
        derived = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(derived.hex(), expected)


# A hash no secret matches: unknown keys are checked against it, so that timing does not
# tell which keys exist.
DUMMY_HASH = hash_secret(secrets.token_urlsafe(24), b"\0" * 16)


def new_key() -> str:
    return secrets.token_hex(10)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


class VerifiedSecrets:
    """(key, secret) pairs this process verified, as HMAC tags bound to the stored hash
    they were verified against. Never the secret itself."""

    def __init__(self) -> None:
        self._pepper = os.urandom(32)
        self._tags: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def tag(self, key: str, secret: str) -> bytes:
        return hmac.new(self._pepper, f"{key}\0{secret}".encode(), hashlib.sha256).digest()

    def check(self, key: str, secret: str, stored_hash: str | None) -> bool:
        """Whether `secret` is the key's, its stored hash being `stored_hash` (None: an
        unknown key, checked against a dummy hash and refused)."""
        tag = self.tag(key, secret)
        cached = self._tags.get(key)
        if cached is not None and stored_hash is not None and cached[1] == stored_hash \
                and hmac.compare_digest(cached[0], tag):
            return True
        if not verify_secret(secret, stored_hash or DUMMY_HASH) or stored_hash is None:
            return False
        with self._lock:
            self._tags[key] = (tag, stored_hash)
        return True


@dataclass(frozen=True)
class Account:
    key: str
    role: str
    display_name: str
    secret_hash: str = field(repr=False, default="")
    # Agency operators: the agencies or provinces they see; None for every other role.
    units: frozenset[str] | None = None
    # LMS clients: the cohorts whose learners they may run final tests for.
    cohorts: frozenset[str] | None = None
    scopes: frozenset[str] = frozenset()
    locale: str | None = None
    disabled: bool = False
    # One more on every change: projections keep the highest (shared.account_tables).
    version: int = 1
    updated_at: datetime | None = None
    updated_by: str = ""

    def as_public(self) -> dict:
        """What the admin API and CLI show: everything but the secret's hash."""
        return {"key": self.key, "role": self.role, "display_name": self.display_name,
                "units": sorted(self.units) if self.units is not None else None,
                "cohorts": sorted(self.cohorts) if self.cohorts is not None else None,
                "scopes": sorted(self.scopes), "locale": self.locale, "disabled": self.disabled,
                "version": self.version, "updated_at": self.updated_at, "updated_by": self.updated_by}


def _set_or_none(values) -> frozenset[str] | None:
    return None if values is None else frozenset(v.strip() for v in values if v and v.strip())


def validated(role: str, units, cohorts, scopes, locale: str | None) -> dict:
    """The checked facts of an account (DomainError 422 naming the field otherwise)."""
    if role not in ROLES:
        raise DomainError(f"role must be one of {', '.join(ROLES)}", "role")
    units, cohorts = _set_or_none(units), _set_or_none(cohorts)
    if role == AGENCY_OPERATOR and not units:
        raise DomainError("an agency operator needs at least one unit (agency or province)", "units")
    if role != AGENCY_OPERATOR and units:
        raise DomainError("only an agency operator is limited to units", "units")
    if role != LMS_CLIENT and (cohorts or scopes):
        raise DomainError("only an LMS client is granted cohorts or xAPI scopes", "cohorts" if cohorts else "scopes")
    scopes = frozenset(scopes or ())
    unknown = scopes - set(XAPI_SCOPES)
    if unknown:
        raise DomainError(f"scopes must be among {', '.join(XAPI_SCOPES)}", "scopes")
    if locale is not None and locale not in LOCALES:
        raise DomainError(f"locale must be one of {', '.join(LOCALES)}", "locale")
    return {"role": role, "units": units if role == AGENCY_OPERATOR else None,
            "cohorts": (cohorts or frozenset()) if role == LMS_CLIENT else None, "scopes": scopes,
            "locale": locale}


def new_account(key: str, display_name: str, secret: str, by: str, now: datetime, *, role: str,
                units=None, cohorts=None, scopes=None, locale: str | None = None) -> Account:
    if not display_name or not display_name.strip():
        raise DomainError("an account needs a display name", "display_name")
    return Account(key=key, display_name=display_name.strip(), secret_hash=hash_secret(secret),
                   updated_at=now, updated_by=by, **validated(role, units, cohorts, scopes, locale))


def changed(account: Account, by: str, now: datetime, **changes) -> Account:
    """The account after a change of role, units, cohorts, scopes, name, locale or
    secret hash, or its disabling; one version more."""
    if account.disabled:
        raise Conflict("the account is disabled; create a new one", "key")
    merged = {"role": account.role, "units": account.units, "cohorts": account.cohorts,
              "scopes": account.scopes, "locale": account.locale} | {
        k: v for k, v in changes.items() if k in ("role", "units", "cohorts", "scopes", "locale")}
    if "role" in changes and changes["role"] != account.role:  # a new role drops the old one's limits
        for name in ("units", "cohorts", "scopes"):
            merged[name] = changes.get(name)
    facts = validated(**merged)
    other = {k: v for k, v in changes.items() if k in ("display_name", "secret_hash", "disabled")}
    return replace(account, **facts, **other, version=account.version + 1, updated_at=now, updated_by=by)


def account_changed(account: Account) -> Event:
    """The account's whole state as an `account.changed` statement (the bus carries the
    secret's scrypt hash, never the secret)."""
    facts = {"key": account.key, "role": account.role, "display_name": account.display_name,
             "secret_hash": account.secret_hash,
             "units": sorted(account.units) if account.units is not None else None,
             "cohorts": sorted(account.cohorts) if account.cohorts is not None else None,
             "scopes": sorted(account.scopes), "locale": account.locale, "disabled": account.disabled,
             "version": account.version}
    obj = xapi.activity(ACCOUNTS_IRI + account.key, name=account.display_name, type_=ACCOUNT_ACTIVITY_TYPE,
                        extensions={EXT_ACCOUNT: facts})
    return Event(EventType.ACCOUNT_CHANGED, xapi.statement(
        xapi.operator_agent(account.updated_by), xapi.DEFINED, obj, authority=AUTHORITY,
        timestamp=account.updated_at))


def from_statement(statement: dict) -> Account:
    """The account an `account.changed` statement tells (KeyError, TypeError or
    ValueError if it is not one)."""
    facts = statement["object"]["definition"]["extensions"][EXT_ACCOUNT]
    return Account(
        key=str(facts["key"]), role=str(facts["role"]), display_name=str(facts["display_name"]),
        secret_hash=str(facts["secret_hash"]), units=_set_or_none(facts.get("units")),
        cohorts=_set_or_none(facts.get("cohorts")), scopes=frozenset(facts.get("scopes") or ()),
        locale=facts.get("locale"), disabled=bool(facts["disabled"]), version=int(facts["version"]),
        updated_at=xapi.parse_timestamp(statement["timestamp"]),
        updated_by=xapi.inverse_functional_identifier(statement["actor"]).rpartition("|")[2])
