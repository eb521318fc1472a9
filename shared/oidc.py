"""OAuth2/OIDC bearer tokens from an external identity provider (Keycloak, say;
docs/accounts.md): a JWT signed by a key of the provider's JWKS (a URL, fetched and
cached, or a file), from the configured issuer, for the configured audience, not
expired. The role, units and cohorts come from configured claims.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import jwt

from shared.accounts import AGENCY_OPERATOR, LMS_CLIENT, ROLES
from shared.auth import Principal
from shared.config import OidcSettings

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


def claim(claims: dict, path: str):
    """A claim by dotted path ("realm_access.roles"), or None."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


class TokenVerifier:
    def __init__(self, settings: OidcSettings):
        self.settings = settings
        if settings.jwks_file:
            self._keys = jwt.PyJWKSet.from_dict(json.loads(Path(settings.jwks_file).read_text()))
            self._client = None
        else:
            self._keys = None
            self._client = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def _signing_key(self, token: str):
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidTokenError("no key of the JWKS has the token's kid")

    def claims(self, token: str) -> dict:
        """The token's verified claims; jwt.InvalidTokenError (or PyJWKClientError) otherwise."""
        s = self.settings
        return jwt.decode(token, self._signing_key(token), algorithms=ALGORITHMS, issuer=s.issuer,
                          audience=s.audience or None, leeway=s.leeway_seconds,
                          options={"require": ["exp", "iss", "sub"], "verify_aud": bool(s.audience)})

    def principal(self, token: str) -> Principal | None:
        """The principal a valid token names, or None (why is logged, never the token)."""
        try:
            claims = self.claims(token)
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            log.info("bearer token refused", extra={"reason": f"{type(exc).__name__}: {exc}"})
            return None
        s = self.settings
        role = next((r for r in _strings(claim(claims, s.role_claim)) if r in ROLES), None)
        if role is None:
            log.info("bearer token refused", extra={"reason": f"no known role in the claim {s.role_claim!r}"})
            return None
        units = frozenset(_strings(claim(claims, s.units_claim)))
        if role == AGENCY_OPERATOR and not units:
            log.info("bearer token refused", extra={"reason": f"an agency operator without {s.units_claim!r}"})
            return None
        return Principal(key=f"oidc:{claims['sub']}", role=role,
                         units=units if role == AGENCY_OPERATOR else None,
                         display_name=str(claim(claims, s.name_claim) or claims["sub"]),
                         locale=claims.get("locale") if claims.get("locale") in ("vi", "en") else None,
                         cohorts=frozenset(_strings(claim(claims, s.cohorts_claim))) if role == LMS_CLIENT else None,
                         source="oidc")
