"""Every endpoint of every service, tried with each role, against shared/permissions.py.

The routes come from each app's url_map, so a new endpoint is tried (and fails here
until it is given a permission) without anyone remembering to add it to a list."""
from __future__ import annotations

import base64
import re

import pytest

from shared import account_tables, accounts, db, permissions, xapi
from shared.service import available, load

SECRET = "a-secret-for-the-role-table"
ROLE_KEYS = {role: f"role-{role}" for role in accounts.ROLES}


def _auth(key: str, secret: str = SECRET) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def _account(role: str) -> accounts.Account:
    limits = {accounts.AGENCY_OPERATOR: {"units": ["Revenue agency"]},
              accounts.LMS_CLIENT: {"cohorts": ["some-cohort"], "scopes": ["statements/write"]}}.get(role, {})
    return accounts.new_account(ROLE_KEYS[role], f"a {role}", SECRET, "test", xapi.utc_now(), role=role, **limits)


ROLE_ACCOUNTS = [_account(role) for role in accounts.ROLES]


def _apps(deployment):
    """Each service's app, its accounts table holding one account per role (written as
    the projection writes it: this test is about the permission table, not the bus)."""
    apps = {}
    for service in available():
        app = deployment.app(service)
        spec = load(service)
        engine = db.create_engine(deployment.settings(service).database_url)
        try:
            with engine.begin() as conn:
                account_tables.store(conn, spec.metadata.tables["accounts"], ROLE_ACCOUNTS)
        finally:
            engine.dispose()
        apps[service] = app
    return apps


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def _path(rule) -> str:
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x", rule.rule)


def _call(client, path, method, body, headers=None):
    """The answer, read whole (a streamed export closes its context when read)."""
    response = client.open(path, method=method, headers=headers or {}, **body)
    response.get_data()
    response.close()
    return response


def _not_signed_in(response) -> bool:
    """401; or, from the dashboard's and the admin pages, which send a browser to the
    dashboard's sign-in page (the admin pages: at progress's URL), that."""
    return response.status_code == 401 or (
        response.status_code == 302 and response.location.split("?")[0].endswith("/dashboard/sign-in"))


def test_every_route_of_every_service_is_in_the_permission_table_and_nothing_else_is(deployment):
    for service, app in _apps(deployment).items():
        routes = {permissions.route_key(method, rule.rule) for method, rule in _routes(app)}
        assert routes - set(permissions.ENDPOINTS[service]) == set(), f"{service}: routes without a permission"
        assert set(permissions.ENDPOINTS[service]) - routes == set(), f"{service}: permissions without a route"
        assert permissions.UNIT_AWARE.get(service, frozenset()) <= routes


@pytest.mark.timeout(600)
def test_each_role_gets_what_the_table_gives_it_on_every_endpoint(deployment):
    tried = 0
    for service, app in _apps(deployment).items():
        client = app.test_client()
        for method, rule in _routes(app):
            needed = permissions.needed(service, method, rule.rule)
            if needed == permissions.XAPI:  # the LRS's own credentials: tests/integration/test_lrs_*.py
                continue
            path = _path(rule)
            body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            anonymous = _call(client, path, method, body)
            if needed == permissions.PUBLIC:
                assert anonymous.status_code not in (401, 403), (service, method, rule.rule)
                continue
            assert _not_signed_in(anonymous), (service, method, rule.rule, anonymous.status_code)
            for role, key in ROLE_KEYS.items():
                response = _call(client, path, method, body, _auth(key))
                refusal = permissions.refusal(service, role, method, rule.rule)
                what = (service, method, rule.rule, role, response.status_code)
                if refusal is None:
                    assert response.status_code not in (401, 403) or (
                        response.status_code == 403 and "not granted" in response.json["message"]), what
                else:
                    assert response.status_code == 403 and response.json["message"] == refusal, what
                tried += 1
            # A wrong secret is a 401 whatever the role.
            assert _not_signed_in(_call(client, path, method, body, _auth(ROLE_KEYS["campaign_admin"], "wrong")))
    assert tried > 250


def test_the_roles_get_what_the_issue_says(deployment):
    """Spot checks of the table against issue 14's roles, in words."""
    can = permissions.refusal
    assert can("enrollment", "campaign_admin", "POST", "/accounts") is None
    assert can("enrollment", "programme_manager", "POST", "/accounts") is not None
    assert can("enrollment", "programme_manager", "POST", "/cohorts/<cohort_id>/enrolments") is None
    assert can("certification", "programme_manager", "PUT", "/programmes/<programme_id>/rules") is None
    assert can("certification", "auditor", "GET", "/certificates") is None
    assert can("certification", "auditor", "POST", "/certificates/<certificate_id>/revocation") is not None
    assert can("enrollment", "auditor", "GET", "/audit") is None
    assert can("enrollment", "agency_operator", "GET", "/enrolments") is None
    assert can("progress", "agency_operator", "GET", "/cohorts/<cohort_id>/learners.csv") is None
    assert can("enrollment", "agency_operator", "POST", "/cohorts") is not None
    assert can("assessment", "lms_client", "POST", "/attempts") is None
    assert can("assessment", "lms_client", "GET", "/cohorts/<cohort_id>/results") is not None
    for service in available():
        for route in permissions.ENDPOINTS[service]:
            method, rule = route.split(" ", 1)
            if method != "GET":
                assert can(service, "auditor", method, rule) is not None or permissions.needed(
                    service, method, rule) in (permissions.PUBLIC, permissions.XAPI), (service, route)
