"""Every command of the write side, through an in-memory unit of work (tests/unit/fakes.py):
what it stores, what it announces, and that a refused command stores and announces
nothing. No database, no broker: the integration tests cover the SQL repositories."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace

import pytest

from services.assessment.commands import AssessmentCommands
from services.assessment.domain import OPEN, SUBMITTED, TIMED_OUT, Enrolment, Forbidden
from services.certification import issuance
from services.certification.commands import CertificationCommands
from services.certification.domain import COMPLETED, IN_PROGRESS, LATE, PASSED, QUALIFIED, SYSTEM, Achievement
from services.enrollment.commands import EnrollmentCommands
from services.enrollment.domain import WITHDRAWN
from services.forwarding.commands import ForwardingCommands
from shared import xapi
from shared.errors import Conflict, DomainError, NotFound
from shared.events import EventType
from tests.unit.fakes import (
    FakeAssessmentRepository,
    FakeCertificationRepository,
    FakeEnrollmentRepository,
    FakeForwardingRepository,
    FakeUnitOfWork,
    _Row,
)

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
BASE = "https://learnstream.example/"
PROGRAMME = {"code": "DS1", "title": "Digital skills", "required_modules": ["https://x.test/m1"],
             "final_test": "https://x.test/test", "window_days": 10}


def ids(prefix: str):
    numbers = count(1)
    return lambda: f"{prefix}{next(numbers)}"


# --- enrollment ------------------------------------------------------------------------------

@pytest.fixture
def enrollment():
    uow = FakeUnitOfWork(FakeEnrollmentRepository())
    return uow, EnrollmentCommands(uow, BASE, clock=lambda: T0, new_id=ids("id-"))


def _cohort(commands):
    programme = commands.define_programme(PROGRAMME, "ops")
    return commands.define_cohort({"programme_id": programme.id, "name": "Wave 1", "agency": "Tax office",
                                   "province": "North", "wave": 1, "accounts_issued_at": T0}, "ops")


def test_defining_a_programme_and_a_cohort_stores_and_announces_each(enrollment):
    uow, commands = enrollment
    cohort = _cohort(commands)
    assert uow.repo.cohorts[cohort.id].programme_id in uow.repo.programmes
    assert uow.event_types == [EventType.PROGRAMME_DEFINED, EventType.COHORT_DEFINED]
    assert cohort.activity_id == f"{BASE}cohorts/{cohort.id}"


def test_a_duplicate_programme_code_is_a_conflict_and_announces_nothing(enrollment):
    uow, commands = enrollment
    commands.define_programme(PROGRAMME, "ops")
    with pytest.raises(Conflict) as caught:
        commands.define_programme(PROGRAMME, "ops")
    assert caught.value.field == "code"
    assert len(uow.repo.programmes) == 1 and uow.event_types == [EventType.PROGRAMME_DEFINED]


def test_a_programme_from_a_cmi5_course_takes_its_modules_and_one_attached_keeps_them_once_learners_enrol(enrollment):
    uow, commands = enrollment
    modules = ("https://x.test/cmi5/c1/au/0", "https://x.test/cmi5/c1/block/b")
    uow.repo.courses["c1"] = modules
    fields = {k: v for k, v in PROGRAMME.items() if k != "required_modules"}
    defined = commands.define_programme({**fields, "code": "CMI", "cmi5_course": "c1"}, "ops")
    assert defined.required_modules == modules and defined.cmi5_course == "c1"
    with pytest.raises(NotFound) as unknown:
        commands.attach_course(defined.id, "c2", "ops")
    assert unknown.value.field == "cmi5_course"

    cohort = _cohort(commands)  # PROGRAMME, with modules of its own
    attached = commands.attach_course(cohort.programme_id, "c1", "ops")
    assert uow.repo.programmes[attached.id].required_modules == modules
    commands.enrol(cohort.id, {"name": "Ada", "email": "ada@example.org"})
    with pytest.raises(Conflict) as enrolled:
        commands.attach_course(cohort.programme_id, "c1", "ops")
    assert enrolled.value.field == "cmi5_course"
    assert uow.event_types.count(EventType.PROGRAMME_DEFINED) == 3  # CMI, PROGRAMME, the attachment


def test_a_cohort_of_an_unknown_programme_is_not_found(enrollment):
    uow, commands = enrollment
    with pytest.raises(NotFound):
        commands.define_cohort({"programme_id": "nope", "name": "W", "agency": "A", "province": "P", "wave": 1,
                                "accounts_issued_at": T0}, "ops")
    assert uow.commits == 0


def test_importing_twice_enrols_once_and_reports_the_rest(enrollment):
    uow, commands = enrollment
    cohort = _cohort(commands)
    text = "name,email\nAna,ana@example.org\nBo,bo@example.org\nBad,not-an-email\n"
    first = commands.import_csv(cohort.id, text).as_dict()
    again = commands.import_csv(cohort.id, text).as_dict()
    assert (first["enrolled"], first["already_enrolled"], len(first["rejected"])) == (2, 0, 1)
    assert (again["enrolled"], again["already_enrolled"]) == (0, 2)
    assert uow.event_types.count(EventType.LEARNER_ENROLLED) == 2
    assert all(e.deadline == T0 + timedelta(days=10) for e in uow.repo.enrolments.values())


def test_enrolling_the_same_learner_again_is_a_conflict(enrollment):
    _, commands = enrollment
    cohort = _cohort(commands)
    commands.enrol(cohort.id, {"name": "Ana", "email": "ana@example.org"})
    with pytest.raises(Conflict):
        commands.enrol(cohort.id, {"name": "Ana", "email": "ana@example.org"})


def test_a_withdrawal_is_stored_and_announced_once(enrollment):
    uow, commands = enrollment
    cohort = _cohort(commands)
    enrolment = commands.enrol(cohort.id, {"name": "Ana", "email": "ana@example.org"})
    commands.withdraw(enrolment.id, "moved")
    assert uow.repo.enrolments[enrolment.id].status == WITHDRAWN
    with pytest.raises(Conflict):
        commands.withdraw(enrolment.id, "again")
    assert uow.event_types.count(EventType.LEARNER_WITHDREW) == 1


# --- assessment ------------------------------------------------------------------------------

QUESTIONS = [{"id": f"q{i}", "type": "single_choice", "text": f"Question {i}?", "options": ["a", "b"],
              "correct": ["a"]} for i in range(1, 5)]
TEST = {"time_limit_minutes": 30, "pass_mark": 0.75, "max_attempts": 2, "counting": "best", "question_count": 4}


@pytest.fixture
def assessment():
    repo = FakeAssessmentRepository()
    repo.programmes["p1"] = SimpleNamespace(id="p1", final_test="https://x.test/test",
                                            activity={"id": "https://x.test/p1", "objectType": "Activity"})
    repo.enrolments["r1"] = Enrolment(
        registration="r1", programme_id="p1", cohort_id="c1", learner_key="k1", active=True,
        deadline=T0 + timedelta(days=10), final_test="https://x.test/test",
        actor=xapi.agent(name="Ana", email="ana@example.org"), programme={"id": "https://x.test/p1"})
    uow = FakeUnitOfWork(repo)
    clock = SimpleNamespace(now=T0)
    commands = AssessmentCommands(uow, clock=lambda: clock.now, new_id=ids("attempt-"))
    commands.import_bank("p1", QUESTIONS, "ops")
    commands.define_final_test("p1", TEST, "ops")
    return uow, commands, clock


def test_a_bank_gets_a_new_version_each_import_and_announces_nothing(assessment):
    uow, commands, _ = assessment
    second = commands.import_bank("p1", QUESTIONS, "ops")
    assert second["version"] == 2 and [b.version for b in uow.repo.banks["p1"]] == [1, 2]
    assert uow.event_types == [EventType.FINAL_TEST_DEFINED]  # banks are assessment's own business


def test_a_test_the_bank_cannot_fill_is_refused_and_the_old_one_stands(assessment):
    uow, commands, _ = assessment
    with pytest.raises(DomainError):
        commands.define_final_test("p1", TEST | {"question_count": 9}, "ops")
    assert uow.repo.tests["p1"][1] == 1 and uow.event_types == [EventType.FINAL_TEST_DEFINED]


def test_an_attempt_is_started_submitted_and_announced(assessment):
    uow, commands, clock = assessment
    attempt = commands.start_attempt("r1")
    assert attempt.number == 1 and uow.repo.attempts[attempt.id].status == OPEN
    clock.now = T0 + timedelta(minutes=5)
    finished = commands.submit(attempt.id, {q["id"]: ["a"] for q in QUESTIONS})
    assert finished.status == SUBMITTED and finished.success
    assert uow.event_types[-3:] == [EventType.ATTEMPT_STARTED, EventType.ATTEMPT_SCORED, EventType.ATTEMPT_PASSED]
    passed = uow.published[-1].statement["result"]["extensions"][xapi.EXT_ATTEMPT]
    assert (passed["attempts_used"], passed["attempts_allowed"]) == (1, 2)
    with pytest.raises(Conflict):  # passed: no further attempt
        commands.start_attempt("r1")


def test_a_second_submission_is_a_conflict_and_announces_nothing(assessment):
    uow, commands, _ = assessment
    attempt = commands.start_attempt("r1")
    commands.submit(attempt.id, {})
    announced = len(uow.published)
    with pytest.raises(Conflict):
        commands.submit(attempt.id, {})
    assert len(uow.published) == announced


def test_attempts_run_out(assessment):
    _, commands, _ = assessment
    for _ in range(2):
        commands.submit(commands.start_attempt("r1").id, {})  # all wrong
    with pytest.raises(Conflict) as caught:
        commands.start_attempt("r1")
    assert "2 allowed" in caught.value.message


def test_an_attempt_past_its_limit_is_closed_when_read_and_by_the_sweep(assessment):
    uow, commands, clock = assessment
    first = commands.start_attempt("r1")
    commands.save_answers(first.id, {"q1": ["a"]})
    clock.now = T0 + timedelta(hours=1)
    read = commands.get_attempt(first.id)
    assert read.status == TIMED_OUT and read.finished_at == first.expires_at and read.score.raw == 1
    second = commands.start_attempt("r1")
    clock.now += timedelta(hours=1)
    assert commands.close_expired() == 1 and uow.repo.attempts[second.id].status == TIMED_OUT
    assert commands.close_expired() == 0


def test_saving_answers_after_the_limit_closes_the_attempt_with_what_was_saved(assessment):
    uow, commands, clock = assessment
    attempt = commands.start_attempt("r1")
    commands.save_answers(attempt.id, {"q1": ["a"], "q2": ["a"]})
    clock.now = T0 + timedelta(hours=1)
    with pytest.raises(Conflict):
        commands.save_answers(attempt.id, {"q3": ["a"]})
    assert uow.repo.attempts[attempt.id].score.raw == 2


def test_a_withdrawn_learner_or_a_past_deadline_cannot_start(assessment):
    uow, commands, clock = assessment
    clock.now = T0 + timedelta(days=11)
    with pytest.raises(Forbidden):
        commands.start_attempt("r1")
    with pytest.raises(NotFound):
        commands.start_attempt("unknown")
    assert not uow.repo.attempts


# --- certification ---------------------------------------------------------------------------

def _enrolment_row(registration="r1", learner_key="k1", **overrides) -> _Row:
    row = dict(registration=registration, learner_key=learner_key, programme_id="p1", programme_code="ds1",
               programme_title="Digital skills", programme_activity={"id": "https://x.test/p1"},
               required_modules=["https://x.test/m1"], final_test="https://x.test/test", cohort_id="c1",
               cohort_name="Wave 1", cohort_activity={"id": "https://x.test/c1"},
               actor=xapi.agent(name="Ana", email="ana@example.org"), name="Ana", organisation="Tax office",
               deadline=T0 + timedelta(days=10), enrolled_at=T0, withdrawn_at=None, standing=IN_PROGRESS,
               qualified_at=None)
    return _Row(**(row | overrides))


@pytest.fixture
def certification():
    repo = FakeCertificationRepository()
    repo.enrolments["r1"] = _enrolment_row()
    uow = FakeUnitOfWork(repo)
    return uow, CertificationCommands(uow, BASE, clock=lambda: T0 + timedelta(days=20))


def _complete(repo, learner_key="k1", at=T0 + timedelta(days=2)):
    repo.achievements[learner_key] += [Achievement("https://x.test/m1", COMPLETED, at, f"s-{learner_key}-m"),
                                       Achievement("https://x.test/test", PASSED, at, f"s-{learner_key}-t")]


def _decide(uow, keys):
    with uow:
        issued = issuance.decide_for(uow, BASE, keys)
        uow.commit()
    return issued


def test_the_rule_issues_once_numbered_and_announced(certification):
    uow, _ = certification
    _complete(uow.repo)
    assert _decide(uow, ["k1"]) == 1 and _decide(uow, ["k1"]) == 0
    (cert,) = uow.repo.certificates.values()
    assert cert.number == "DS1-2026-000001" and cert.issued_by == SYSTEM
    assert uow.repo.enrolments["r1"].standing == QUALIFIED
    assert uow.event_types == [EventType.CERTIFICATE_EARNED]


def test_a_replay_issues_nothing(certification):
    uow, _ = certification
    _complete(uow.repo)
    uow.replaying = True
    assert _decide(uow, ["k1"]) == 0 and not uow.repo.certificates and not uow.published


def test_a_withdrawal_before_qualifying_undoes_the_rules_certificate(certification):
    uow, _ = certification
    _complete(uow.repo, at=T0 + timedelta(days=3))
    _decide(uow, ["k1"])
    with uow:
        undone = issuance.undo_if_withdrawn_before_qualifying(
            uow, BASE, [{"programme_id": "p1", "learner_key": "k1", "withdrawn_at": T0 + timedelta(days=1)}])
        uow.commit()
    assert undone == 1 and next(iter(uow.repo.certificates.values())).revoked_by == SYSTEM
    assert uow.event_types == [EventType.CERTIFICATE_EARNED, EventType.CERTIFICATE_REVOKED]


def test_revoking_then_reissuing_gives_a_new_number(certification):
    uow, commands = certification
    _complete(uow.repo)
    _decide(uow, ["k1"])
    (first,) = uow.repo.certificates
    with pytest.raises(Conflict):  # a valid certificate is held
        commands.reissue(first, "ops")
    with pytest.raises(DomainError):
        commands.revoke(first, "  ", "ops")
    commands.revoke(first, "a typo in the name", "ops")
    with pytest.raises(Conflict):
        commands.revoke(first, "again", "ops")
    second = commands.reissue(first, "ops")
    assert uow.repo.certificates[second].number == "DS1-2026-000002"
    assert uow.repo.certificates[second].issue_no == 2
    assert uow.event_types == [EventType.CERTIFICATE_EARNED, EventType.CERTIFICATE_REVOKED,
                               EventType.CERTIFICATE_EARNED]


def test_a_grace_period_turns_late_learners_into_certified_ones(certification):
    uow, commands = certification
    _complete(uow.repo, at=T0 + timedelta(days=12))  # two days past the deadline
    _decide(uow, ["k1"])
    assert uow.repo.enrolments["r1"].standing == LATE and not uow.repo.certificates
    commands.set_rules("p1", 3, "ops")
    assert uow.repo.enrolments["r1"].standing == QUALIFIED and len(uow.repo.certificates) == 1


# --- forwarding ------------------------------------------------------------------------------

TARGET = {"name": "ministry", "url": "https://lrs.ministry.example/xapi/", "xapi_version": "1.0.3",
          "username": "fwd", "password": "s3cret", "filter": {}, "enabled": True, "batch_size": 100,
          "timeout_seconds": 10}


@pytest.fixture
def forwarding():
    uow = FakeUnitOfWork(FakeForwardingRepository())
    return uow, ForwardingCommands(uow, clock=lambda: T0, new_id=ids("target-"))


def test_a_target_is_created_changed_and_deleted_and_forwarding_publishes_nothing(forwarding):
    uow, commands = forwarding
    target = commands.create(TARGET, "ops")
    with pytest.raises(Conflict) as caught:
        commands.create(TARGET, "ops")
    assert caught.value.field == "name"
    uow.repo.stopped.add(target)
    commands.replace(target, TARGET | {"batch_size": 10, "password": None} | {"password": "new"}, "ops")
    changed = uow.repo.targets[target]
    assert (changed["batch_size"], changed["revision"], changed["password"]) == (10, 2, "new")
    assert target not in uow.repo.stopped  # a change starts a stopped target again
    commands.replace(target, {k: v for k, v in TARGET.items() if k != "password"}, "ops")
    assert uow.repo.targets[target]["password"] == "new"  # kept when not given
    commands.delete(target)
    assert not uow.repo.targets and not uow.published
    with pytest.raises(NotFound):
        commands.delete(target)


def test_a_replay_marks_only_the_unresolved_statements_of_that_target(forwarding):
    uow, commands = forwarding
    target = commands.create(TARGET, "ops")
    for sid, resolved in (("s1", None), ("s2", None), ("s3", T0)):
        uow.repo.quarantine[(target, sid)] = {"resolved_at": resolved, "replay_requested_at": None}
    assert commands.request_replay(target, ["s2", "s3"]) == 1
    assert commands.request_replay(target, None) == 2
    with pytest.raises(NotFound):
        commands.request_replay("nope", None)
