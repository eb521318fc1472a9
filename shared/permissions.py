"""Who may call what: every endpoint of every service, the permission it needs, and the
permissions of each role. The one place to read or change it (docs/accounts.md).

A route not in ENDPOINTS is refused to everyone (403), so a new endpoint is closed until
it is given a permission here; tests/integration/test_permissions.py walks every app's
url_map and fails on one that is missing.
"""
from __future__ import annotations

from shared.accounts import AGENCY_OPERATOR, AUDITOR, CAMPAIGN_ADMIN, LMS_CLIENT, PROGRAMME_MANAGER

# What a route needs. PUBLIC: nobody signs in (probes, API docs, certificate
# verification). XAPI: the LRS checks its own credentials (services/progress/lrs/auth.py).
PUBLIC = "public"
XAPI = "xapi"
READ = "read"                              # programmes, cohorts, enrolments, progress, results, certificates
READ_TESTS = "read_tests"                  # question banks (with their answers) and final-test definitions
MANAGE_PROGRAMMES = "manage_programmes"    # define programmes and cohorts
MANAGE_ENROLMENTS = "manage_enrolments"    # enrol, import, withdraw
MANAGE_TESTS = "manage_tests"              # question banks, final tests
MANAGE_RULES = "manage_rules"              # certification rules
MANAGE_CERTIFICATES = "manage_certificates"  # revoke, re-issue
TAKE_TESTS = "take_tests"                  # the learner-facing attempt calls
LAUNCH_CONTENT = "launch_content"          # cmi5: launch an AU for a learner
RUN_OPERATIONS = "run_operations"          # scheduler calls (close expired attempts)
READ_FORWARDING = "read_forwarding"
MANAGE_FORWARDING = "manage_forwarding"
READ_ACCOUNTS = "read_accounts"
MANAGE_ACCOUNTS = "manage_accounts"
READ_AUDIT = "read_audit"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    CAMPAIGN_ADMIN: frozenset({READ, READ_TESTS, MANAGE_PROGRAMMES, MANAGE_ENROLMENTS, MANAGE_TESTS, MANAGE_RULES,
                               MANAGE_CERTIFICATES, TAKE_TESTS, LAUNCH_CONTENT, RUN_OPERATIONS, READ_FORWARDING,
                               MANAGE_FORWARDING, READ_ACCOUNTS, MANAGE_ACCOUNTS, READ_AUDIT}),
    PROGRAMME_MANAGER: frozenset({READ, READ_TESTS, MANAGE_PROGRAMMES, MANAGE_ENROLMENTS, MANAGE_TESTS,
                                  MANAGE_RULES}),
    # Only where the route filters by unit (UNIT_AWARE); elsewhere 403.
    AGENCY_OPERATOR: frozenset({READ}),
    AUDITOR: frozenset({READ, READ_TESTS, READ_FORWARDING, READ_ACCOUNTS, READ_AUDIT}),
    # Only for learners of the cohorts granted (services/assessment checks the enrolment's cohort).
    # cmi5 launches likewise (services/progress/cmi5/api.py checks the registration's cohort).
    LMS_CLIENT: frozenset({TAKE_TESTS, LAUNCH_CONTENT}),
}

_COMMON = {
    "GET /static/<path:filename>": PUBLIC, "GET /openapi.json": PUBLIC, "GET /metrics": PUBLIC,
    "GET /healthz": PUBLIC, "GET /readyz": PUBLIC,
    "GET /audit": READ_AUDIT, "GET /audit.csv": READ_AUDIT,
}

# service -> "METHOD rule" -> permission. HEAD is asked as GET.
ENDPOINTS: dict[str, dict[str, str]] = {
    "enrollment": _COMMON | {
        "GET /programmes": READ, "POST /programmes": MANAGE_PROGRAMMES,
        "GET /programmes/<programme_id>": READ,
        "PUT /programmes/<programme_id>/cmi5-course": MANAGE_PROGRAMMES,
        "GET /cohorts": READ, "POST /cohorts": MANAGE_PROGRAMMES, "GET /cohorts/<cohort_id>": READ,
        "POST /cohorts/<cohort_id>/enrolments": MANAGE_ENROLMENTS,
        "POST /cohorts/<cohort_id>/enrolments/import": MANAGE_ENROLMENTS,
        "GET /enrolments": READ, "GET /enrolments/<enrolment_id>": READ,
        "POST /enrolments/<enrolment_id>/withdrawal": MANAGE_ENROLMENTS,
        "GET /accounts": READ_ACCOUNTS, "POST /accounts": MANAGE_ACCOUNTS,
        "GET /accounts/<key>": READ_ACCOUNTS, "PATCH /accounts/<key>": MANAGE_ACCOUNTS,
        "POST /accounts/<key>/secret": MANAGE_ACCOUNTS, "POST /accounts/<key>/disable": MANAGE_ACCOUNTS,
        # The same, as pages (services/enrollment/admin.py; signed in on the dashboard).
        "GET /admin/static/<path:filename>": PUBLIC,
        "GET /admin/accounts": READ_ACCOUNTS, "POST /admin/accounts": MANAGE_ACCOUNTS,
        "GET /admin/accounts/<key>": READ_ACCOUNTS, "POST /admin/accounts/<key>": MANAGE_ACCOUNTS,
        "POST /admin/accounts/<key>/secret": MANAGE_ACCOUNTS, "POST /admin/accounts/<key>/disable": MANAGE_ACCOUNTS,
    },
    "progress": _COMMON | {
        "GET /dashboard/static/<path:filename>": PUBLIC,  # the pages' CSS and script, the sign-in page's too
        "GET /campaign": READ, "GET /rollups": READ, "GET /cohorts": READ, "GET /cohorts/<cohort_id>": READ,
        "GET /cohorts/<cohort_id>/learners": READ, "GET /cohorts/<cohort_id>/learners.csv": READ,
        "GET /cohorts/<cohort_id>/series": READ, "GET /dashboard": READ, "GET /dashboard/cohorts/<cohort_id>": READ,
        # Signing in, out and choosing a language show no data (services/progress/dashboard.py).
        "GET /dashboard/sign-in": PUBLIC, "POST /dashboard/sign-in": PUBLIC, "POST /dashboard/sign-out": PUBLIC,
        "POST /dashboard/language": PUBLIC,
        # cmi5: packages are programme content; a waiver or an abandonment changes an enrolment's
        # record; the fetch URL (its one-time token is the credential) and the package's files
        # are the AU's own, open to the browser that runs it.
        "POST /cmi5/courses": MANAGE_PROGRAMMES, "GET /cmi5/courses/<course_id>": READ,
        "DELETE /cmi5/courses/<course_id>": MANAGE_PROGRAMMES,
        "POST /cmi5/courses/<course_id>/launches": LAUNCH_CONTENT,
        "GET /cmi5/registrations/<registration>": READ,
        "POST /cmi5/registrations/<registration>/waivers": MANAGE_ENROLMENTS,
        "POST /cmi5/sessions/<session_id>/abandonment": MANAGE_ENROLMENTS,
        "POST /cmi5/fetch/<token>": PUBLIC,
        "GET /cmi5/content/<course_id>/<path:path>": PUBLIC,
        **{f"{method} /xapi{rule}": XAPI for method in ("GET", "POST", "PUT", "DELETE")
           for rule in ("/statements", "/activities/state", "/activities/profile", "/agents/profile",
                        "/activities", "/agents", "/about")},
    },
    "assessment": _COMMON | {
        "POST /programmes/<programme_id>/question-bank": MANAGE_TESTS,
        "GET /programmes/<programme_id>/question-bank": READ_TESTS,
        "GET /programmes/<programme_id>/question-bank/versions/<int:version>": READ_TESTS,
        "PUT /programmes/<programme_id>/final-test": MANAGE_TESTS,
        "GET /programmes/<programme_id>/final-test": READ_TESTS,
        "POST /attempts": TAKE_TESTS, "GET /attempts/<attempt_id>": TAKE_TESTS,
        "PUT /attempts/<attempt_id>/answers": TAKE_TESTS, "POST /attempts/<attempt_id>/submission": TAKE_TESTS,
        "POST /attempts/close-expired": RUN_OPERATIONS,
        "GET /results/<registration>": READ, "GET /cohorts/<cohort_id>/results": READ,
        "GET /programmes/<programme_id>/results": READ,
    },
    "certification": _COMMON | {
        "GET /certificates": READ, "GET /certificates/<certificate_id>": READ,
        "GET /certificates/<certificate_id>.pdf": READ,
        "POST /certificates/<certificate_id>/revocation": MANAGE_CERTIFICATES,
        "POST /certificates/<certificate_id>/reissue": MANAGE_CERTIFICATES,
        "GET /cohorts/<cohort_id>/certificates.csv": READ, "GET /cohorts/<cohort_id>/certificates.zip": READ,
        "GET /standings": READ, "GET /programmes/<programme_id>/rules": READ,
        "PUT /programmes/<programme_id>/rules": MANAGE_RULES,
        "GET /verify/<code>.json": PUBLIC, "GET /api/verify/<code>": PUBLIC, "GET /verify/<code>": PUBLIC,
    },
    "forwarding": _COMMON | {
        "GET /targets": READ_FORWARDING, "POST /targets": MANAGE_FORWARDING,
        "GET /targets/<target_id>": READ_FORWARDING, "PUT /targets/<target_id>": MANAGE_FORWARDING,
        "DELETE /targets/<target_id>": MANAGE_FORWARDING,
        "GET /targets/<target_id>/quarantine": READ_FORWARDING,
        "POST /targets/<target_id>/quarantine/replay": MANAGE_FORWARDING,
        "GET /forwarding": READ_FORWARDING,
    },
}

# The routes that show an agency operator only their units; every other route refuses them.
UNIT_AWARE: dict[str, frozenset[str]] = {
    "progress": frozenset(route for route, permission in ENDPOINTS["progress"].items() if permission == READ),
    "assessment": frozenset({"GET /results/<registration>", "GET /cohorts/<cohort_id>/results",
                             "GET /programmes/<programme_id>/results"}),
    "certification": frozenset({"GET /certificates", "GET /certificates/<certificate_id>",
                                "GET /certificates/<certificate_id>.pdf", "GET /cohorts/<cohort_id>/certificates.csv",
                                "GET /cohorts/<cohort_id>/certificates.zip", "GET /standings",
                                "GET /programmes/<programme_id>/rules"}),
    "enrollment": frozenset({"GET /programmes", "GET /programmes/<programme_id>", "GET /cohorts",
                             "GET /cohorts/<cohort_id>", "GET /enrolments", "GET /enrolments/<enrolment_id>"}),
}


def route_key(method: str, rule: str) -> str:
    return f"{'GET' if method == 'HEAD' else method} {rule}"


def needed(service: str, method: str, rule: str) -> str | None:
    """The permission a route needs; None: not in the table (refused to everyone)."""
    return ENDPOINTS.get(service, {}).get(route_key(method, rule))


def refusal(service: str, role: str, method: str, rule: str) -> str | None:
    """Why `role` may not call the route (the 403's message), or None if it may."""
    permission = needed(service, method, rule)
    if permission is None:
        return f"{route_key(method, rule)} is in no role's permissions (shared/permissions.py)"
    if permission in (PUBLIC, XAPI):
        return None
    if permission not in ROLE_PERMISSIONS.get(role, frozenset()):
        return f"this needs the permission {permission!r}, which the role {role!r} does not have"
    if role == AGENCY_OPERATOR and route_key(method, rule) not in UNIT_AWARE.get(service, frozenset()):
        return (f"{route_key(method, rule)} does not filter by unit, so an agency operator "
                "(limited to units) may not call it")
    return None
