"""The dashboard's own sign-in: session cookie and its flags, CSRF on every form, the
JSON API read with the session, an agency operator's units, the operator's language."""
from __future__ import annotations

import csv
import io
import re

from tests.conftest import CREDENTIALS, UNIT_OPERATOR
from tests.integration.test_progress_api import NORTH, SOUTH, world  # noqa: F401  (fixture)
from tests.support.flows import AUTH

COOKIE = "learnstream_dashboard"


def _token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def _sign_in(client, key="ops", secret=CREDENTIALS["ops"], **headers):
    page = client.get("/dashboard/sign-in", headers=headers)
    assert page.status_code == 200
    return client.post("/dashboard/sign-in", data={"key": key, "secret": secret, "csrf_token": _token(page.data)},
                       headers=headers)


def test_sign_in_sets_a_guarded_session_cookie_and_opens_the_dashboard(world):  # noqa: F811
    client, _, _ = world
    assert client.get("/dashboard").status_code == 302
    signed_in = _sign_in(client)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/dashboard"
    cookie = signed_in.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in this test; https: below
    page = client.get("/dashboard")
    assert page.status_code == 200 and b"dashboard.js" in page.data and b"Sign out" in page.data
    # The page's script reads the JSON API with the same cookie, no Basic header.
    assert client.get("/campaign").json["enrolled"] == 4
    assert client.get(f"/cohorts/{NORTH}/learners").status_code == 200
    # Not when another site started the request.
    assert client.get("/campaign", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 401


def test_the_cookie_is_secure_over_https(world):  # noqa: F811
    client, _, _ = world
    page = client.get("/dashboard/sign-in", base_url="https://localhost")
    signed_in = client.post("/dashboard/sign-in", base_url="https://localhost", data={
        "key": "ops", "secret": CREDENTIALS["ops"], "csrf_token": _token(page.data)})
    assert "Secure" in signed_in.headers["Set-Cookie"]


def test_wrong_secret_is_refused_and_sets_no_operator(world):  # noqa: F811
    client, _, _ = world
    refused = _sign_in(client, secret="wrong")
    assert refused.status_code == 401 and b"Wrong key or secret." in refused.data
    assert client.get("/dashboard").status_code == 302
    assert client.get("/campaign").status_code == 401


def test_csrf_is_enforced_on_every_form_and_a_refused_post_changes_nothing(world):  # noqa: F811
    client, _, _ = world
    client.get("/dashboard/sign-in")  # a session with a token exists; these posts do not send it
    no_token = client.post("/dashboard/sign-in", data={"key": "ops", "secret": CREDENTIALS["ops"]})
    assert no_token.status_code == 400
    assert client.get("/campaign").status_code == 401  # not signed in
    assert _sign_in(client).status_code == 302
    assert client.post("/dashboard/sign-out").status_code == 400
    assert client.post("/dashboard/sign-out", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/campaign").status_code == 200  # still signed in
    assert client.post("/dashboard/language", data={"locale": "vi"}).status_code == 400
    assert b"Sign out" in client.get("/dashboard").data  # still English
    token = _token(client.get("/dashboard").data)
    signed_out = client.post("/dashboard/sign-out", data={"csrf_token": token})
    assert signed_out.status_code == 302 and signed_out.headers["Location"] == "/dashboard/sign-in"
    assert client.get("/campaign").status_code == 401 and client.get("/dashboard").status_code == 302


def test_an_agency_operator_sees_only_their_units(world):  # noqa: F811
    client, _, _ = world
    key, secret, unit = UNIT_OPERATOR
    _sign_in(client, key=key, secret=secret)
    page = client.get("/dashboard")
    assert page.status_code == 200 and unit.encode() in page.data
    assert [c["id"] for c in client.get("/cohorts").json["items"]] == [NORTH]
    assert client.get(f"/dashboard/cohorts/{SOUTH}").status_code == 404
    assert client.get(f"/cohorts/{SOUTH}/learners.csv").status_code == 404
    assert [r["key"] for r in client.get("/rollups?by=agency").json] == ["Revenue agency"]


def test_the_language_follows_accept_language_then_the_switch(world):  # noqa: F811
    client, _, _ = world
    vi = {"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}
    assert "Đăng nhập".encode() in client.get("/dashboard/sign-in", headers=vi).data
    _sign_in(client, **vi)
    page = client.get("/dashboard", headers=vi)
    assert b'lang="vi"' in page.data and "Tổng quan chiến dịch".encode() in page.data
    assert b"Campaign overview" in client.get("/dashboard").data  # no Accept-Language: English
    switched = client.post("/dashboard/language", data={"locale": "vi", "next": "/dashboard",
                                                        "csrf_token": _token(page.data)})
    assert switched.status_code == 302 and switched.headers["Location"] == "/dashboard"
    assert "Đăng xuất".encode() in client.get("/dashboard").data  # the switch wins over the header


def test_csv_headers_in_the_readers_language(world):  # noqa: F811
    client, _, _ = world
    english = client.get(f"/cohorts/{NORTH}/learners.csv", headers=AUTH).text
    assert english.splitlines()[0].startswith("name,organisation,status,state")  # unchanged for scripts
    vietnamese = client.get(f"/cohorts/{NORTH}/learners.csv", headers={**AUTH, "Accept-Language": "vi"}).text
    header = next(csv.reader(io.StringIO(vietnamese)))
    assert header[:3] == ["Họ và tên", "Đơn vị", "Tình trạng ghi danh"]
    assert len(header) == len(english.splitlines()[0].split(","))
