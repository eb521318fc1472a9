"""The contract check the integration tests run at close finds what breaks the contract."""
from __future__ import annotations

from datetime import UTC, datetime

from shared import events, xapi
from shared.bus import Record
from tests.support import contract
from tests.support import statements as s

AT = datetime(2026, 11, 20, 9, tzinfo=UTC)
COHORT = "22222222-2222-4222-8222-222222222222"


def _record(kind, stmt, headers=None, key=None) -> Record:
    key = key or xapi.learner_key(stmt["actor"]).encode()
    return Record("t.learnstream.enrollment.v1", 0, 7, key, xapi.encode(stmt),
                  events.statement_headers("enrollment", kind, stmt) if headers is None else headers)


def test_every_event_type_has_a_schema_and_every_schema_an_event_type():
    declared = {v for k, v in vars(events.EventType).items() if k.isupper()}
    assert set(contract.validators()) == declared


def test_records_as_the_services_build_them_pass():
    from services.enrollment import statements as built
    from services.enrollment.domain import Cohort, Enrolment, Learner, Programme

    programme = Programme("11111111-1111-4111-8111-111111111111", "DSK", "Digital skills", ("m1", "m2"), "final",
                          10, "https://x.test/programmes/DSK")
    cohort = Cohort(COHORT, programme.id, "Cohort 1", "Revenue agency", None, 1, AT, "https://x.test/cohorts/1")
    enrolment = Enrolment(s.new_id(), programme.id, cohort.id, Learner("Ana", "Tax", "ana@example.org"), AT, AT)
    events_ = [built.programme_defined(programme, "ops", AT), built.cohort_defined(cohort, programme, "ops", AT),
               built.learner_enrolled(enrolment, programme, cohort),
               built.learner_withdrew(enrolment.withdraw(None, AT), programme, cohort)]
    for event in events_:
        assert contract.problems(_record(event.type, event.statement, headers=events.statement_headers(
            "enrollment", event.type, event.statement))) == [], event.type


def test_a_record_of_another_source_is_not_learnstreams():
    kind, stmt = s.enrolled(1, s.new_id(), COHORT, AT, AT)
    assert "not a learnstream service" in contract.problems(
        _record(kind, stmt, headers=events.statement_headers("elsewhere", kind, stmt)))[0]


def test_a_value_that_breaks_its_schema_is_found():
    kind, stmt = s.enrolled(1, s.new_id(), COHORT, AT, AT)
    del stmt["context"]["registration"]
    stmt["verb"]["id"] = "http://adlnet.gov/expapi/verbs/completed"
    found = contract.problems(_record(kind, stmt))
    assert any("registration" in p for p in found) and any("verb.id" in p for p in found), found


def test_headers_that_disagree_with_the_statement_are_found():
    kind, stmt = s.enrolled(1, s.new_id(), COHORT, AT, AT)
    wrong_id = events.statement_headers("enrollment", kind, stmt | {"id": s.new_id()})
    assert any("ce_id" in p for p in contract.problems(_record(kind, stmt, headers=wrong_id)))
    assert any("ce_subject" in p for p in contract.problems(_record(kind, stmt, key=b"another-learner")))


def test_first_generation_records_are_checked_by_value():
    kind, stmt = s.enrolled(1, s.new_id(), COHORT, AT, AT)
    assert contract.problems(_record(kind, stmt, headers=s.first_generation_headers("enrollment", kind))) == []
    del stmt["object"]["definition"]
    assert contract.problems(_record(kind, stmt, headers=s.first_generation_headers("enrollment", kind)))


def test_an_unknown_event_type_is_a_problem():
    kind, stmt = s.enrolled(1, s.new_id(), COHORT, AT, AT)
    assert "no schema" in contract.problems(_record("enrolment.misspelt", stmt))[0]
