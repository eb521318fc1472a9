"""The accounts' admin pages on enrollment (/admin/accounts), signed in with the
dashboard's session: a sign-in on progress opens them, a signed-out browser is sent to
it, an agency operator is refused, an auditor reads, CSRF is enforced, and create,
change, rotate and disable go through the same commands as the admin API."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.web_session import COOKIE_NAME
from tests.conftest import CREDENTIALS, UNIT_OPERATOR
from tests.support.flows import AUTH


def _token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


@pytest.fixture
def apps(deployment):
    return deployment.app("enrollment").test_client(), deployment.app("progress").test_client()


def _sign_in(enrollment, progress, key="ops", secret=CREDENTIALS["ops"]):
    """Sign in on the dashboard (progress) and carry its cookie to enrollment, as a
    browser does for two ports of one host (cookies are not port-specific)."""
    page = progress.get("/dashboard/sign-in")
    signed_in = progress.post("/dashboard/sign-in", data={"key": key, "secret": secret,
                                                          "csrf_token": _token(page.data)})
    assert signed_in.status_code == 302
    enrollment.set_cookie(COOKIE_NAME, progress.get_cookie(COOKIE_NAME).value)


def _create(enrollment, **fields):
    token = _token(enrollment.get("/admin/accounts").data)
    return enrollment.post("/admin/accounts", data={"csrf_token": token, **fields})


def test_a_signed_out_browser_is_sent_to_the_dashboards_sign_in_and_back(apps):
    enrollment, progress = apps
    refused = enrollment.get("/admin/accounts")
    assert refused.status_code == 302
    where = urlsplit(refused.location)
    assert where.path == "/dashboard/sign-in" and where.netloc == "127.0.0.1:8002"  # progress's URL
    back = parse_qs(where.query)["next"][0]
    assert back == "http://127.0.0.1:8001/admin/accounts"
    # The dashboard's sign-in brings the browser back there (and nowhere else).
    page = progress.get(f"/dashboard/sign-in?next={back}")
    signed_in = progress.post("/dashboard/sign-in", query_string={"next": back}, data={
        "key": "ops", "secret": CREDENTIALS["ops"], "csrf_token": _token(page.data)})
    assert signed_in.location == back
    page = progress.get("/dashboard/sign-in")  # signing in made a new session, with a new token
    evil = progress.post("/dashboard/sign-in", query_string={"next": "http://evil.example/admin/accounts"}, data={
        "key": "ops", "secret": CREDENTIALS["ops"], "csrf_token": _token(page.data)})
    assert evil.location == "/dashboard"
    # A post without a session goes there too, and changes nothing.
    assert enrollment.post("/admin/accounts", data={"role": "auditor"}).status_code == 302
    assert enrollment.get("/accounts", headers=AUTH).json["total"] == 0


def test_the_dashboards_sign_in_opens_the_pages_and_the_dashboard_links_them(apps):
    enrollment, progress = apps
    _sign_in(enrollment, progress)
    page = enrollment.get("/admin/accounts")
    assert page.status_code == 200 and b'id="create"' in page.data and b"Sign out" in page.data
    assert page.headers["Cache-Control"] == "no-store"
    assert b'href="http://127.0.0.1:8001/admin/accounts" id="accounts-link"' in progress.get("/dashboard").data
    vietnamese = enrollment.get("/admin/accounts", headers={"Accept-Language": "vi"})
    assert b'lang="vi"' in vietnamese.data and "Tài khoản".encode() in vietnamese.data


def test_create_shows_the_secret_once_and_the_account_is_the_apis(apps):
    enrollment, progress = apps
    _sign_in(enrollment, progress)
    created = _create(enrollment, key="lms-hanoi", display_name="Hà Nội LMS", role="lms_client",
                      cohorts="cohort-a, cohort-b", scopes=["statements/write", "state"], locale="vi")
    assert created.status_code == 201
    secret = re.search(rb'<code id="secret">([^<]+)</code>', created.data).group(1).decode()
    account = enrollment.get("/accounts/lms-hanoi", headers=AUTH).json
    assert account["role"] == "lms_client" and account["cohorts"] == ["cohort-a", "cohort-b"]
    assert account["scopes"] == ["state", "statements/write"] and account["updated_by"] == "ops"
    assert secret.encode() not in enrollment.get("/admin/accounts").data  # once
    assert secret.encode() not in enrollment.get("/admin/accounts/lms-hanoi").data
    listed = enrollment.get("/admin/accounts").data
    assert b'data-key="lms-hanoi"' in listed
    # A refused form is the page again with the reason; nothing is made.
    refused = _create(enrollment, key="bad-operator", role="agency_operator", display_name="No units")
    assert refused.status_code == 422 and b"unit" in refused.data
    assert enrollment.get("/accounts/bad-operator", headers=AUTH).status_code == 404
    # The change is in the audit trail, as the API's are.
    trail = enrollment.get("/audit", headers=AUTH, query_string={"action": "/admin"}).json["items"]
    assert [(e["action"], e["actor"]) for e in trail] == [("POST /admin/accounts", "ops")]


def test_change_rotate_and_disable(apps):
    enrollment, progress = apps
    _sign_in(enrollment, progress)
    _create(enrollment, key="north-2", display_name="North", role="agency_operator", units="Revenue agency")
    token = _token(enrollment.get("/admin/accounts/north-2").data)
    changed = enrollment.post("/admin/accounts/north-2", data={
        "csrf_token": token, "display_name": "North 2", "role": "agency_operator",
        "units": "Revenue agency, Hà Nội", "locale": "vi"})
    assert changed.status_code == 303
    account = enrollment.get("/accounts/north-2", headers=AUTH).json
    assert account["units"] == ["Hà Nội", "Revenue agency"] and account["display_name"] == "North 2"
    assert account["locale"] == "vi" and account["version"] == 2
    rotated = enrollment.post("/admin/accounts/north-2/secret", data={"csrf_token": token})
    assert rotated.status_code == 200 and b'id="secret"' in rotated.data
    assert enrollment.get("/accounts/north-2", headers=AUTH).json["version"] == 3
    disabled = enrollment.post("/admin/accounts/north-2/disable", data={"csrf_token": token})
    assert disabled.status_code == 303
    assert enrollment.get("/accounts/north-2", headers=AUTH).json["disabled"] is True
    page = enrollment.get("/admin/accounts/north-2").data
    assert b'id="disable"' not in page and b'id="change"' not in page  # nothing more to do with it


def test_csrf_is_enforced_and_a_refused_post_changes_nothing(apps):
    enrollment, progress = apps
    _sign_in(enrollment, progress)
    enrollment.get("/admin/accounts")  # the session has a token; these posts do not send it
    assert enrollment.post("/admin/accounts", data={"role": "auditor", "display_name": "x"}).status_code == 400
    assert enrollment.post("/admin/accounts", data={"role": "auditor", "csrf_token": "forged"}).status_code == 400
    assert enrollment.get("/accounts", headers=AUTH).json["total"] == 0
    _create(enrollment, key="audit-1", display_name="Audit", role="auditor")
    assert enrollment.post("/admin/accounts/audit-1/disable").status_code == 400
    assert enrollment.post("/admin/accounts/audit-1/secret").status_code == 400
    assert enrollment.post("/admin/accounts/audit-1", data={"role": "campaign_admin"}).status_code == 400
    account = enrollment.get("/accounts/audit-1", headers=AUTH).json
    assert account["disabled"] is False and account["role"] == "auditor" and account["version"] == 1


def test_an_agency_operator_is_refused_and_an_auditor_only_reads(apps):
    enrollment, progress = apps
    key, secret, _ = UNIT_OPERATOR
    _sign_in(enrollment, progress, key, secret)
    refused = enrollment.get("/admin/accounts")
    assert refused.status_code == 403 and "read_accounts" in refused.json["message"]
    assert b"accounts-link" not in progress.get("/dashboard").data
    # An auditor (made through the API; enrollment's own table has it at once).
    made = enrollment.post("/accounts", headers=AUTH, json={"key": "auditor-1", "role": "auditor",
                                                             "display_name": "Audit"})
    enrollment.application.extensions["learnstream_accounts"].refresh()  # not a second later
    with enrollment.session_transaction() as session:  # signed in as the auditor
        session["operator"] = made.json["key"]
    page = enrollment.get("/admin/accounts")
    assert page.status_code == 200 and b'data-key="auditor-1"' in page.data and b'id="create"' not in page.data
    posted = enrollment.post("/admin/accounts", data={"csrf_token": _token(page.data), "role": "auditor"})
    assert posted.status_code == 403 and "manage_accounts" in posted.json["message"]
