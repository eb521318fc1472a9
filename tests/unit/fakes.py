"""In-memory units of work and repositories, so each command is unit-tested without a
database or a broker (shared.unit_of_work). Each fake repository keeps the same promises
as the SQL one it stands for, uniqueness included (a duplicate is a Conflict); the
integration tests hold the SQL ones to them."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

from services.assessment.domain import OPEN, Attempt, Bank, Enrolment, FinalTest, History
from services.certification.domain import Achievement, Rules
from services.enrollment.domain import Cohort, Programme
from services.enrollment.domain import Enrolment as EnrollmentEnrolment
from shared.errors import Conflict, NotFound
from shared.events import Event
from shared.unit_of_work import UnitOfWork


class FakeUnitOfWork(UnitOfWork):
    """Commits land in `published` (the outbox) and `commits`. The repository's state is
    copied in at the start and kept only on commit, so a command that fails half way
    leaves nothing behind, as a rolled-back transaction does."""

    def __init__(self, repo):
        super().__init__()
        self._committed_repo = self.repo = repo  # outside a block, `repo` is the committed state
        self.published: list[Event] = []
        self.commits = 0

    def _begin(self) -> None:
        self.repo = self._committed_repo.copy()

    def _commit(self, events: list[Event]) -> None:
        self._committed_repo = self.repo
        self.repo = self.repo.copy()
        self.published.extend(events)
        self.commits += 1

    def _end(self) -> None:
        self.repo = self._committed_repo

    def __call__(self) -> FakeUnitOfWork:
        """The commands' `new_uow`: each command opens this same one again."""
        return self

    @property
    def event_types(self) -> list[str]:
        return [event.type for event in self.published]


def _copy_state(obj, **collections):
    clone = object.__new__(type(obj))
    clone.__dict__.update(obj.__dict__)
    for name, copier in collections.items():
        setattr(clone, name, copier(getattr(obj, name)))
    return clone


# --- enrollment ------------------------------------------------------------------------------

class FakeEnrollmentRepository:
    def __init__(self):
        self.programmes: dict[str, Programme] = {}
        self.cohorts: dict[str, Cohort] = {}
        self.enrolments: dict[str, EnrollmentEnrolment] = {}
        self.courses: dict[str, tuple[str, ...]] = {}  # cmi5 course -> its modules

    def copy(self):
        return _copy_state(self, programmes=dict, cohorts=dict, enrolments=dict, courses=dict)

    def get_programme(self, programme_id):
        if programme_id not in self.programmes:
            raise NotFound(f"no programme {programme_id}", "programme_id")
        return self.programmes[programme_id]

    def get_cohort(self, cohort_id):
        if cohort_id not in self.cohorts:
            raise NotFound(f"no cohort {cohort_id}", "cohort_id")
        return self.cohorts[cohort_id]

    def get_enrolment(self, enrolment_id):
        if enrolment_id not in self.enrolments:
            raise NotFound(f"no enrolment {enrolment_id}")
        return self.enrolments[enrolment_id]

    def enrolled_learner_keys(self, programme_id, keys):
        return {e.learner.key: e.id for e in self.enrolments.values()
                if e.programme_id == programme_id and e.learner.key in keys}

    def add_programme(self, programme, created_at):
        if any(p.code == programme.code for p in self.programmes.values()):
            raise Conflict(f"a programme with code {programme.code!r} exists", "code")
        self.programmes[programme.id] = programme

    def save_programme(self, programme):
        self.programmes[programme.id] = programme

    def has_enrolments(self, programme_id):
        return any(e.programme_id == programme_id for e in self.enrolments.values())

    def course_modules(self, course_id):
        if course_id not in self.courses:
            raise NotFound(f"no cmi5 course {course_id} is known here", "cmi5_course")
        return self.courses[course_id]

    def add_cohort(self, cohort, created_at):
        if any(c.programme_id == cohort.programme_id and c.name == cohort.name for c in self.cohorts.values()):
            raise Conflict(f"the programme already has a cohort named {cohort.name!r}", "name")
        self.cohorts[cohort.id] = cohort

    def add_enrolments(self, enrolments):
        inserted = set()
        for e in enrolments:
            if not self.enrolled_learner_keys(e.programme_id, [e.learner.key]):
                self.enrolments[e.id] = e
                inserted.add(e.id)
        return inserted

    def save_withdrawal(self, enrolment):
        if self.enrolments[enrolment.id].status == enrolment.status:
            return False
        self.enrolments[enrolment.id] = enrolment
        return True


# --- assessment ------------------------------------------------------------------------------

class FakeAssessmentRepository:
    def __init__(self):
        self.programmes: dict[str, SimpleNamespace] = {}
        self.enrolments: dict[str, Enrolment] = {}
        self.tests: dict[str, tuple[FinalTest, int]] = {}
        self.test_values: dict[str, dict] = {}
        self.banks: dict[str, list[Bank]] = defaultdict(list)
        self.attempts: dict[str, Attempt] = {}
        self.external_results: dict[tuple[str, str], list[bool]] = defaultdict(list)  # an LMS's, per learner+test

    def copy(self):
        return _copy_state(self, programmes=dict, enrolments=dict, tests=dict, test_values=dict,
                           banks=lambda b: defaultdict(list, {k: list(v) for k, v in b.items()}),
                           attempts=dict, external_results=lambda r: defaultdict(list, r))

    def programme(self, programme_id):
        if programme_id not in self.programmes:
            raise NotFound(f"no programme {programme_id} is known here", "programme_id")
        return self.programmes[programme_id]

    def enrolment(self, registration):
        return self.enrolments.get(registration)

    def final_test(self, programme_id):
        return self.tests.get(programme_id)

    def save_final_test(self, programme_id, values):
        self.test_values[programme_id] = values
        self.tests[programme_id] = (FinalTest(
            programme_id=programme_id, time_limit=timedelta(seconds=values["time_limit_seconds"]),
            pass_mark=values["pass_mark"], max_attempts=values["max_attempts"], counting=values["counting"],
            question_count=values["question_count"],
            per_topic=tuple(sorted((values["per_topic"] or {}).items()))), values["revision"])

    def latest_bank(self, programme_id):
        banks = self.banks.get(programme_id)
        return banks[-1] if banks else None

    def next_bank_version(self, programme_id):
        return len(self.banks[programme_id]) + 1

    def add_bank(self, programme_id, bank, topics, imported_at, imported_by):
        if any(b.version == bank.version for b in self.banks[programme_id]):
            raise Conflict("another import of this bank is under way; retry")
        self.banks[programme_id].append(bank)

    def get_attempt(self, attempt_id):
        if attempt_id not in self.attempts:
            raise NotFound(f"no attempt {attempt_id}")
        return self.attempts[attempt_id]

    def open_attempts(self, registration):
        return [a for a in self.attempts.values() if a.registration == registration and a.status == OPEN]

    def add_attempt(self, attempt, learner_key):
        if any(a.registration == attempt.registration and a.number == attempt.number for a in self.attempts.values()):
            raise Conflict("another attempt was started at the same moment", "registration")
        self.attempts[attempt.id] = attempt

    def close(self, attempt):
        if self.attempts[attempt.id].status != OPEN:
            return False
        self.attempts[attempt.id] = attempt
        return True

    def save_answers(self, attempt):
        if self.attempts[attempt.id].status != OPEN:
            return False
        self.attempts[attempt.id] = replace(self.attempts[attempt.id], answers=attempt.answers)
        return True

    def history(self, enrolment):
        own = [a for a in self.attempts.values() if a.registration == enrolment.registration]
        external = self.external_results[(enrolment.learner_key, enrolment.final_test)]
        open_ids = [a.id for a in own if a.status == OPEN]
        return History(used=len(own) + len(external),
                       passed=any(a.success for a in own) or any(external),
                       open_attempt=open_ids[0] if open_ids else None)

    def expired_open_attempt_ids(self, now, limit):
        return sorted(a.id for a in self.attempts.values() if a.status == OPEN and a.expires_at < now)[:limit]


# --- certification ---------------------------------------------------------------------------

class _Row(SimpleNamespace):
    """A row as SQLAlchemy gives it: attributes, and `_asdict()`."""

    def _asdict(self) -> dict:
        return dict(vars(self))


class FakeCertificationRepository:
    def __init__(self):
        self.enrolments: dict[str, _Row] = {}   # registration -> learner view row
        self.achievements: dict[str, list[Achievement]] = defaultdict(list)
        self.rules: dict[str, Rules] = {}
        self.certificates: dict[str, _Row] = {}
        self.sequences: dict[tuple[str, int], int] = {}

    def copy(self):
        return _copy_state(self, enrolments=lambda d: {k: _Row(**vars(v)) for k, v in d.items()},
                           achievements=lambda a: defaultdict(list, {k: list(v) for k, v in a.items()}),
                           rules=dict, certificates=lambda d: {k: _Row(**vars(v)) for k, v in d.items()},
                           sequences=dict)

    def enrolments_of(self, learner_keys):
        return [row for row in self.enrolments.values() if row.learner_key in learner_keys]

    def enrolment(self, registration):
        return self.enrolments.get(registration)

    def achievements_of(self, learner_keys):
        return {k: list(self.achievements[k]) for k in learner_keys if k in self.achievements}

    def set_standings(self, changed):
        for c in changed:
            row = self.enrolments[c["registration"]]
            row.standing, row.qualified_at = c["standing"], c["qualified_at"]

    def learners_with_standing(self, programme_id, standings):
        return [r.learner_key for r in self.enrolments.values()
                if r.programme_id == programme_id and r.standing in standings]

    def rules_for(self, programme_ids):
        return {p: self.rules[p] for p in programme_ids if p in self.rules}

    def save_rules(self, programme_id, rules, updated_at, updated_by):
        self.rules[programme_id] = rules

    def certified(self, learner_keys):
        return {(c.programme_id, c.learner_key) for c in self.certificates.values() if c.learner_key in learner_keys}

    def _taken(self, row):
        return any((c.programme_id, c.learner_key, c.issue_no) == (row["programme_id"], row["learner_key"],
                                                                   row["issue_no"]) for c in self.certificates.values())

    def add_certificates(self, rows):
        inserted = set()
        for row in rows:
            if not self._taken(row):
                self.certificates[row["id"]] = _Row(**row)
                inserted.add(row["id"])
        return inserted

    def add_certificate(self, row):
        if self._taken(row):
            raise Conflict("the certificate was re-issued concurrently")
        self.certificates[row["id"]] = _Row(**row)

    def set_numbers(self, numbers):
        for cid, number in numbers.items():
            self.certificates[cid].number = number

    def allocate_numbers(self, programme_code, year, count):
        last = self.sequences.get((programme_code, year), 0)
        self.sequences[(programme_code, year)] = last + count
        return list(range(last + 1, last + count + 1))

    def first_issue(self, programme_id, learner_key):
        return next((c for c in self.certificates.values() if (c.programme_id, c.learner_key, c.issue_no)
                     == (programme_id, learner_key, 1)), None)

    def certificate(self, certificate_id):
        if certificate_id not in self.certificates:
            raise NotFound(f"no certificate {certificate_id}")
        return self.certificates[certificate_id]

    def issues_of(self, programme_id, learner_key):
        return sorted((c for c in self.certificates.values()
                       if (c.programme_id, c.learner_key) == (programme_id, learner_key)), key=lambda c: c.issue_no)

    def revoke(self, certificate_id, at, by, reason):
        cert = self.certificates[certificate_id]
        if cert.revoked_at is not None:
            return False
        cert.revoked_at, cert.revoked_by, cert.revocation_reason = at, by, reason
        return True


# --- forwarding ------------------------------------------------------------------------------

class FakeForwardingRepository:
    def __init__(self):
        self.targets: dict[str, dict] = {}
        self.quarantine: dict[tuple[str, str], dict] = {}  # (target, statement id) -> row
        self.stopped: set[str] = set()

    def copy(self):
        return _copy_state(self, targets=lambda d: {k: dict(v) for k, v in d.items()},
                           quarantine=lambda d: {k: dict(v) for k, v in d.items()}, stopped=set)

    def require_target(self, target_id):
        if target_id not in self.targets:
            raise NotFound(f"no target {target_id}")

    def _name_taken(self, name, but=None):
        if any(t["name"] == name and i != but for i, t in self.targets.items()):
            raise Conflict(f"a target named {name!r} exists already", "name")

    def add_target(self, row):
        self._name_taken(row["name"])
        self.targets[row["id"]] = dict(row)

    def change_target(self, target_id, values):
        self._name_taken(values["name"], but=target_id)
        target = self.targets[target_id]
        target.update(values, revision=target["revision"] + 1)
        self.stopped.discard(target_id)

    def delete_target(self, target_id):
        del self.targets[target_id]
        self.quarantine = {k: v for k, v in self.quarantine.items() if k[0] != target_id}
        self.stopped.discard(target_id)

    def request_replay(self, target_id, statement_ids, at):
        marked = 0
        for (target, sid), row in self.quarantine.items():
            if target == target_id and row["resolved_at"] is None and (statement_ids is None or sid in statement_ids):
                row["replay_requested_at"] = at
                marked += 1
        return marked
