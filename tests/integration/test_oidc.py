"""OIDC bearer tokens (issue 14): a JWT signed by a key of the configured JWKS (a file,
or a URL served here by a local HTTP server), from the issuer, for the audience, not
expired; role and units from the configured claims. Keys are made by the test."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.config import OidcSettings
from shared.service import load
from tests.support.flows import AUTH, define_cohort

ISSUER = "https://keycloak.test/realms/learnstream"
AUDIENCE = "learnstream"


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = _key(), _key()


def _jwks(private_key, kid="k1") -> dict:
    public = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {"keys": [public | {"kid": kid, "use": "sig", "alg": "RS256"}]}


def _token(key=KEY, kid="k1", **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300,
            "preferred_username": "an.nguyen", "realm_access": {"roles": ["offline_access", "auditor"]}} | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": kid})


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _app(deployment, service: str, **oidc):
    settings = deployment.settings(service, oidc=OidcSettings(
        issuer=ISSUER, audience=AUDIENCE, role_claim="realm_access.roles", **oidc))
    app = load(service).create_app(settings)
    app.testing = True
    return app.test_client()


@pytest.fixture
def jwks_file(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_jwks(KEY)))
    return str(path)


def test_a_valid_token_signs_in_with_the_role_of_its_claim(deployment, jwks_file):
    client = _app(deployment, "enrollment", jwks_file=jwks_file)
    assert client.get("/programmes", headers=_bearer(_token())).status_code == 200
    refused = client.post("/programmes", headers=_bearer(_token()), json={})
    assert refused.status_code == 403 and "'auditor'" in refused.json["message"]
    # Basic keeps working beside it.
    assert client.get("/programmes", headers=AUTH).status_code == 200


@pytest.mark.parametrize("token", [
    pytest.param(lambda: _token(exp=int(time.time()) - 120), id="expired"),
    pytest.param(lambda: _token(iss="https://evil.test/realms/learnstream"), id="wrong-issuer"),
    pytest.param(lambda: _token(aud="another-client"), id="wrong-audience"),
    pytest.param(lambda: _token(key=OTHER_KEY), id="wrong-signature"),
    pytest.param(lambda: _token(kid="unknown"), id="unknown-kid"),
    pytest.param(lambda: _token(exp=None), id="no-expiry"),
    pytest.param(lambda: _token(realm_access={"roles": ["offline_access"]}), id="no-known-role"),
    pytest.param(lambda: _token()[:-4] + "AAAA", id="tampered"),
    pytest.param(lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60,
                                     "realm_access": {"roles": ["campaign_admin"]}}, "secret", algorithm="HS256"),
                 id="hs256-not-allowed"),
    pytest.param(lambda: "not-a-jwt", id="garbage"),
])
def test_a_bad_token_is_refused(deployment, jwks_file, token):
    client = _app(deployment, "enrollment", jwks_file=jwks_file)
    response = client.get("/programmes", headers=_bearer(token()))
    assert response.status_code == 401
    assert "Bearer" not in response.text and "eyJ" not in response.text


def test_units_come_from_their_claim_and_limit_what_an_agency_operator_sees(deployment, jwks_file):
    client = _app(deployment, "enrollment", jwks_file=jwks_file)
    _, ours = define_cohort(client)
    client.post("/cohorts", headers=AUTH, json={"programme_id": ours["programme_id"], "name": "theirs",
                                                "agency": "Customs agency", "wave": 1,
                                                "accounts_issued_at": "2026-11-02"})
    token = _token(realm_access={"roles": ["agency_operator"]}, learnstream_units=["Revenue agency"])
    seen = client.get("/cohorts", headers=_bearer(token)).json["items"]
    assert [c["id"] for c in seen] == [ours["id"]]
    # An agency operator without units is refused rather than shown everything.
    assert client.get("/cohorts", headers=_bearer(_token(realm_access={"roles": ["agency_operator"]}))
                      ).status_code == 401


def test_the_jwks_is_fetched_from_its_url(deployment):
    body = json.dumps(_jwks(KEY)).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/realms/learnstream/protocol/openid-connect/certs"
        client = _app(deployment, "certification", jwks_url=url)
        assert client.get("/standings", headers=_bearer(_token())).status_code == 200
        assert client.get("/standings", headers=_bearer(_token(key=OTHER_KEY))).status_code == 401
    finally:
        server.shutdown()
        server.server_close()
