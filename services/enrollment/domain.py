"""Enrollment rules, in plain Python (no Flask, SQLAlchemy or Kafka)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared import xapi
from shared.errors import Conflict, DomainError
from shared.vocabulary import ENROLLED, WITHDRAWN

DEFAULT_WINDOW_DAYS = 10


@dataclass(frozen=True)
class Programme:
    id: str
    code: str
    title: str
    required_modules: tuple[str, ...]
    final_test: str
    window_days: int
    activity_id: str
    # The imported cmi5 course whose AUs and blocks are the required modules, if any.
    cmi5_course: str | None = None

    def __post_init__(self):
        if not self.required_modules:
            raise DomainError("a programme needs at least one required module", "required_modules")
        if len(set(self.required_modules)) != len(self.required_modules):
            raise DomainError("required modules must not repeat", "required_modules")
        if self.final_test in self.required_modules:
            raise DomainError("the final test cannot also be a required module", "final_test")
        if not 1 <= self.window_days <= 366:
            raise DomainError("the completion window must be 1 to 366 days", "window_days")


    def delivered_by(self, course_id: str, modules: tuple[str, ...], has_enrolments: bool) -> Programme:
        """The programme with an imported cmi5 course attached: the course's AUs and
        blocks become its required modules. Not once learners are enrolled: what each of
        them must finish, and every count already made of it, would change under them."""
        if has_enrolments:
            raise Conflict("learners are enrolled in this programme: its required modules can no longer "
                           "change (define a new programme for the course)", "cmi5_course")
        return replace(self, required_modules=tuple(modules), cmi5_course=course_id)


@dataclass(frozen=True)
class Cohort:
    id: str
    programme_id: str
    name: str
    agency: str
    province: str | None
    wave: int
    accounts_issued_at: datetime
    activity_id: str


@dataclass(frozen=True)
class Learner:
    name: str
    organisation: str | None = None
    email: str | None = None
    account_home_page: str | None = None
    account_name: str | None = None

    def __post_init__(self):
        if not self.email and not (self.account_home_page and self.account_name):
            raise DomainError("a learner needs an email or an account (home page and name)", "email")

    @property
    def actor(self) -> dict:
        return xapi.agent(name=self.name, email=self.email,
                          account_home_page=self.account_home_page, account_name=self.account_name)

    @property
    def key(self) -> str:
        return xapi.learner_key(self.actor)




@dataclass(frozen=True)
class Enrolment:
    id: str
    programme_id: str
    cohort_id: str
    learner: Learner
    enrolled_at: datetime
    deadline: datetime
    status: str = ENROLLED
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None

    def withdraw(self, reason: str | None, now: datetime) -> Enrolment:
        if self.status == WITHDRAWN:
            raise Conflict("the enrolment is already withdrawn")
        return replace(self, status=WITHDRAWN, withdrawn_at=now, withdrawal_reason=reason)


def deadline_for(programme: Programme, cohort: Cohort) -> datetime:
    """The window runs from the day accounts are issued (docs/architecture.md, The job)."""
    return cohort.accounts_issued_at + timedelta(days=programme.window_days)


def enrol(enrolment_id: str, programme: Programme, cohort: Cohort, learner: Learner, now: datetime) -> Enrolment:
    if cohort.programme_id != programme.id:
        raise DomainError("the cohort belongs to another programme", "cohort_id")
    return Enrolment(id=enrolment_id, programme_id=programme.id, cohort_id=cohort.id, learner=learner,
                     enrolled_at=now, deadline=deadline_for(programme, cohort))
