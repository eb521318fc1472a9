"""LRS client credentials: HTTP Basic key and secret, each with xAPI scopes.

Secrets are stored as scrypt hashes and never logged. Checking scrypt on every request
would cost more than the request itself, so a process remembers, for a few minutes, a
keyed digest of a secret it has verified (never the secret itself).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.progress.lrs import tables as t
from shared import db, xapi
from shared.accounts import LMS_CLIENT, XAPI_SCOPES, hash_secret, verify_secret
from shared.auth import AccountDirectory

# statements/void/any: a voiding statement may target statements other credentials stored
# (without it, or all, a key voids only its own; nobody voids the services' statements).
SCOPES = XAPI_SCOPES
AUTHORITY_HOME = "https://learnstream.dev/lrs/credentials"
_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Client:
    key: str
    name: str
    scopes: frozenset[str]
    # A cmi5 session's credential (deps.SessionHook): the session it is good for, else None.
    session: str | None = None

    @property
    def authority(self) -> dict:
        return {"objectType": "Agent", "name": self.name,
                "account": {"homePage": AUTHORITY_HOME, "name": self.key}}

    def may(self, action: str) -> bool:
        """action: "statements/write", "statements/read", "state", "profile", "define", "read"."""
        scopes = self.scopes
        if "all" in scopes:
            return True
        if action.endswith("read") and "all/read" in scopes:
            return True
        if action == "statements/read" and "statements/read/mine" in scopes:
            return True
        return action in scopes

    @property
    def may_void_any(self) -> bool:
        return bool({"all", "statements/void/any"} & self.scopes)

    @property
    def only_mine(self) -> bool:
        return not ({"all", "all/read", "statements/read"} & self.scopes)


def create(engine: Engine, name: str, scopes: list[str]) -> tuple[str, str]:
    """A new credential; returns (key, secret). The secret is not recoverable later."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
    key = secrets.token_hex(10)
    secret = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        conn.execute(t.credentials.insert().values(
            key=key, name=name, secret_hash=hash_secret(secret), scopes=" ".join(sorted(set(scopes))),
            created_at=xapi.utc_now()))
    return key, secret


_pepper = os.urandom(32)
_verified: dict[str, tuple[bytes, float, Client]] = {}
_lock = threading.Lock()


def authenticate(engine: Engine, key: str, secret: str, accounts: AccountDirectory | None = None) -> Client | None:
    """The client of these credentials: an LMS client's account (shared.auth: managed with
    the admin API and CLI, on the bus) with its xAPI scopes, or else a credential of the
    LRS's own table (`learnstream lrs-credentials`)."""
    if accounts is not None:
        is_account, principal = accounts.account_check(key, secret)
        if is_account:
            if principal is None or principal.role != LMS_CLIENT or not principal.scopes:
                return None
            return Client(key=principal.key, name=principal.display_name, scopes=principal.scopes)
    tag = hmac.new(_pepper, f"{key}\0{secret}".encode(), hashlib.sha256).digest()
    now = time.monotonic()
    cached = _verified.get(key)
    if cached and cached[1] > now and hmac.compare_digest(cached[0], tag):
        return cached[2]
    with db.reading(engine) as conn:
        row = _row(conn, key)
    if row is None or not verify_secret(secret, row.secret_hash):
        return None
    client = Client(key=row.key, name=row.name, scopes=frozenset(row.scopes.split()))
    with _lock:
        _verified[key] = (tag, now + _CACHE_SECONDS, client)
    return client


def _row(conn: Connection, key: str):
    return conn.execute(sa.select(t.credentials).where(t.credentials.c.key == key)).first()
