"""Driving certification in tests: a cohort from the enrollment API, and the statements
the LRS and assessment services would publish, produced exactly as they would."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.certification.service import SERVICE
from shared import bus, events, xapi
from tests.support import contract
from tests.support.flows import AUTH, define_cohort, eventually, import_csv, learners_csv

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DEADLINE = TODAY + timedelta(days=10)  # the programmes' default window from the accounts' issue
LMS = xapi.agent(name="Some LMS", account_home_page="https://lms.test", account_name="lms")


def ensure_topics(deployment) -> None:
    """Create certification's topics and wait until the broker serves them, before any
    worker subscribes: a consumer that joins while a new topic has no leader yet may be
    assigned none of its partitions until its next metadata refresh (minutes)."""
    settings = deployment.settings("certification")
    topics = SERVICE.topics(settings)
    bus.ensure_topics(settings, topics)  # returns once the broker serves them


def cohort_with_learners(deployment, count: int, code: str = "DS1", modules: int = 2):
    """A programme and cohort with `count` learners enrolled, and every topic certification
    reads ready. Returns (programme, cohort, enrolments sorted by email)."""
    ensure_topics(deployment)
    enrollment = deployment.app("enrollment").test_client()
    programme, cohort = define_cohort(enrollment, code=code, modules=modules,
                                      accounts_issued_at=TODAY.date().isoformat())
    import_csv(enrollment, cohort["id"], learners_csv(count))
    listed = enrollment.get(f"/enrolments?cohort_id={cohort['id']}&page_size=1000", headers=AUTH).json["items"]
    return programme, cohort, sorted(listed, key=lambda e: int(e["learner"]["email"][7:].split("@")[0]))


def actor_of(enrolment: dict) -> dict:
    # As an LMS sends it: the same mbox, its own spelling of the name.
    return {"objectType": "Agent", "name": enrolment["learner"]["name"].upper(),
            "mbox": f"mailto:{enrolment['learner']['email']}"}


def lrs_statement(enrolment: dict, activity_id: str, when: datetime, verb: xapi.Verb = xapi.COMPLETED) -> dict:
    """A statement an LMS posted to the LRS (no registration: the LMS has its own)."""
    return xapi.statement(actor_of(enrolment), verb, xapi.activity(activity_id, name="Module"),
                          authority=LMS, timestamp=when)


def final_test_passed(enrolment: dict, programme: dict, cohort: dict, when: datetime) -> dict:
    """The assessment service's `passed` statement (services/assessment/statements.py)."""
    actor = xapi.agent(name=enrolment["learner"]["name"], email=enrolment["learner"]["email"])
    return xapi.statement(
        actor, xapi.PASSED, xapi.activity(programme["final_test"], type_=xapi.ACTIVITY_TYPE_ASSESSMENT),
        authority=xapi.service_agent("assessment"), registration=enrolment["id"],
        parent=xapi.activity(programme["activity_id"]), grouping=xapi.activity(cohort["activity_id"]),
        context_extensions={xapi.EXT_ATTEMPT: {"id": str(uuid.uuid4()), "number": 1}},
        result={"score": {"scaled": 0.9, "raw": 9, "min": 0, "max": 10}, "success": True, "completion": True},
        timestamp=when)


def deciding_statements(enrolment: dict, programme: dict, cohort: dict, start: datetime) -> list[tuple]:
    """Every statement that makes the rule hold for a learner, as (topic service, event type, statement)."""
    found = [("lrs", events.EventType.LRS_STATEMENT, lrs_statement(enrolment, module, start + timedelta(hours=i)))
             for i, module in enumerate(programme["required_modules"])]
    found.append(("assessment", events.EventType.ATTEMPT_PASSED,
                  final_test_passed(enrolment, programme, cohort, start + timedelta(hours=len(found)))))
    return found




def produce(deployment, records: list[tuple]) -> None:
    """Put (topic service, event type, statement) records on the bus, keyed by learner."""
    settings = deployment.settings("certification")
    bus.ensure_topics(settings, SERVICE.topics(settings))
    publisher = bus.Publisher(settings, role="test")
    try:
        publisher.publish((settings.topic(service), xapi.learner_key(stmt["actor"]).encode(), xapi.encode(stmt),
                           events.statement_headers(contract.TEST_SOURCE, event_type, stmt))
                          for service, event_type, stmt in records)
    finally:
        publisher.close()


def certificates(client, **filters) -> dict:
    response = client.get("/certificates", headers=AUTH, query_string={"page_size": 1000, **filters})
    assert response.status_code == 200, response.json
    return response.json


def wait_for_certificates(client, count: int, timeout: float = 120, **filters) -> list[dict]:
    return eventually(lambda: (page := certificates(client, **filters))["total"] >= count and page["items"],
                      timeout=timeout, message=f"{count} certificates")
