"""The `more` page tokens of GET /xapi/statements: signed, and bound to one credential.

A token carries the query's parameters and the position of the next page. It is
`base64url(payload) "." base64url(HMAC-SHA256(key, credential key NUL payload))`: a
client can neither make one up (a crafted token was a 500, issue 12) nor use one another
credential was given, since the credential's key is part of what is signed (a
`statements/read/mine` key could otherwise page through another key's query). Anything
that does not verify is a 400, before its content is even parsed.

The signing key: `LRS_CURSOR_SECRET` when set (several deployments sharing tokens, or
a key rotated by hand: tokens signed with the old key then stop working, which costs a
client a new first page); otherwise a random secret made once per database and kept in
it (`lrs_secrets`). It must be the same in every web worker and after a restart, since
a client's next request may reach another process; a per-process random key would
refuse most tokens. Anyone who can read the database can read its statements anyway,
so keeping the key there gives nothing away.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.progress.lrs import tables as t
from services.progress.lrs.validation import Invalid
from shared import db, xapi

_NAME = "cursor"
_keys: dict[str, bytes] = {}
_lock = threading.Lock()
_REFUSED = "more: not a page token this LRS issued to this credential"


def signing_key(engine: Engine, configured: str) -> bytes:
    """The key tokens are signed with (see the module's docstring); read once per process."""
    if configured:
        return hashlib.sha256(b"learnstream lrs cursor\0" + configured.encode()).digest()
    database = str(engine.url)
    key = _keys.get(database)
    if key is None:
        with _lock:
            key = _keys.get(database) or _stored_key(engine)
            _keys[database] = key
    return key


def _stored_key(engine: Engine) -> bytes:
    # Two workers may start at once: each offers a key, the first one in stays, both read it back.
    with engine.begin() as conn:
        db.insert_ignoring_duplicates(conn, t.secrets, [{"name": _NAME, "value": os.urandom(32)}], ["name"])
        return conn.scalar(sa.select(t.secrets.c.value).where(t.secrets.c.name == _NAME))


def _mac(key: bytes, credential: str, payload: bytes) -> bytes:
    return hmac.new(key, credential.encode() + b"\0" + payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(position: dict, params: dict[str, str], *, key: bytes, credential: str) -> str:
    """The token for the page after `position` of the query `params`, for `credential`."""
    payload = orjson.dumps({"p": params, "c": position})
    return f"{_b64(payload)}.{_b64(_mac(key, credential, payload))}"


def decode(token: str, *, key: bytes, credential: str) -> tuple[dict[str, str], dict]:
    """(the query's parameters, the next page's position) of a token this LRS issued to
    `credential`; Invalid (400) for any other string."""
    body, dot, signature = token.partition(".")
    try:
        payload, mac = _unb64(body), _unb64(signature)
    except (binascii.Error, ValueError):
        raise Invalid(_REFUSED) from None
    if not dot or not hmac.compare_digest(mac, _mac(key, credential, payload)):
        raise Invalid(_REFUSED)
    # Signed by us, so well formed; checked all the same, so that a bug (or a key that
    # leaked) gives a 400 rather than a 500.
    try:
        decoded = orjson.loads(payload)
        params, position = decoded["p"], decoded["c"]
        if not (isinstance(params, dict) and all(isinstance(v, str) for v in params.values())
                and isinstance(position, dict) and isinstance(position.get("stored"), str)
                and isinstance(position.get("seq"), int)):
            raise ValueError
        xapi.parse_timestamp(position["stored"])  # an InvalidStatement is a ValueError
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError):
        raise Invalid(_REFUSED) from None
    return params, position
