"""Operator credentials: HTTP Basic auth against the configured key/secret pairs.

Every endpoint that reads or writes learner data sits behind `protect(blueprint)`.
Secrets are compared in constant time and never logged.
"""
from __future__ import annotations

import hmac

from flask import current_app, g, request
from flask_smorest import abort

SECURITY = [{"basicAuth": []}]


def authenticate() -> str | None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    credentials: dict[str, str] = current_app.config["LEARNSTREAM_SETTINGS"].credentials
    expected = credentials.get(auth.username)
    # Compare even for unknown users so timing does not reveal which keys exist.
    ok = hmac.compare_digest((expected or "\0").encode(), (auth.password or "").encode())
    return auth.username if ok and expected is not None else None


def protect(blueprint, units_aware: bool = False) -> None:
    """Require operator credentials on every route of the blueprint.

    A key limited to one organisation unit is let in only where the blueprint filters
    by unit (`units_aware`); elsewhere it gets 403 rather than seeing every unit.
    """

    @blueprint.before_request
    def _require_credentials():
        if request.method == "OPTIONS":
            return None
        operator = authenticate()
        if operator is None:
            abort(401, message="credentials required (HTTP Basic: operator key and secret)",
                  headers={"WWW-Authenticate": 'Basic realm="learnstream"'})
        g.operator = operator
        # None: a campaign operator; else the organisation unit this operator may see.
        g.operator_unit = current_app.config["LEARNSTREAM_SETTINGS"].operator_units.get(operator)
        if g.operator_unit is not None and not units_aware:
            abort(403, message=f"this key is limited to the unit {g.operator_unit!r}; "
                               "this API needs a campaign operator's key")
        return None
