"""Enrollment's commands: validate, apply the rule, and write the new state and its
statements through one unit of work (shared.unit_of_work), so they commit together or
not at all (docs/architecture.md, Writing)."""
from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from marshmallow import ValidationError

from services.enrollment import statements
from services.enrollment.domain import Cohort, Enrolment, Learner, Programme, enrol
from services.enrollment.repository import EnrollmentRepository
from shared import xapi
from shared.errors import Conflict, DomainError
from shared.schemas import LearnerSchema
from shared.unit_of_work import UnitOfWork

_learner_schema = LearnerSchema()


class EnrollmentCommands:
    """The write side: one method per command, one unit of work per method.

    `new_uow` makes a fresh unit of work (SQL in the service, in-memory in unit tests);
    `new_id` and `clock` are injectable so a test can name what a command creates."""

    def __init__(self, new_uow: Callable[[], UnitOfWork[EnrollmentRepository]], activity_base: str,
                 clock=xapi.utc_now, new_id: Callable[[], str] = lambda: str(uuid.uuid4())):
        self.new_uow = new_uow
        self.activity_base = activity_base
        self.clock = clock
        self.new_id = new_id

    def define_programme(self, data: dict, operator: str) -> Programme:
        """Its required modules are given, or are those of an imported cmi5 course
        (`cmi5_course`, which enrollment has learnt from the bus)."""
        now = self.clock()
        with self.new_uow() as uow:
            course = data.get("cmi5_course")
            programme = Programme(
                id=self.new_id(), code=data["code"], title=data["title"],
                required_modules=uow.repo.course_modules(course) if course else tuple(data["required_modules"]),
                final_test=data["final_test"], window_days=data["window_days"],
                activity_id=f"{self.activity_base}programmes/{data['code']}", cmi5_course=course,
            )
            uow.repo.add_programme(programme, now)
            uow.publish(statements.programme_defined(programme, operator, now))
            uow.commit()
        return programme

    def attach_course(self, programme_id: str, course_id: str, operator: str) -> Programme:
        """An imported cmi5 course delivers the programme: its AUs and blocks become the
        required modules, told again as programme.defined (every reader upserts it)."""
        now = self.clock()
        with self.new_uow() as uow:
            programme = uow.repo.get_programme(programme_id).delivered_by(
                course_id, uow.repo.course_modules(course_id), uow.repo.has_enrolments(programme_id))
            uow.repo.save_programme(programme)
            uow.publish(statements.programme_defined(programme, operator, now))
            uow.commit()
        return programme

    def define_cohort(self, data: dict, operator: str) -> Cohort:
        now = self.clock()
        cohort_id = self.new_id()
        with self.new_uow() as uow:
            programme = uow.repo.get_programme(data["programme_id"])
            cohort = Cohort(
                id=cohort_id, programme_id=programme.id, name=data["name"], agency=data["agency"],
                province=data["province"], wave=data["wave"], accounts_issued_at=data["accounts_issued_at"],
                activity_id=f"{self.activity_base}cohorts/{cohort_id}",
            )
            uow.repo.add_cohort(cohort, now)
            uow.publish(statements.cohort_defined(cohort, programme, operator, now))
            uow.commit()
        return cohort

    def enrol(self, cohort_id: str, learner_data: dict) -> Enrolment:
        learner = Learner(**learner_data)
        report = self._enrol_many(cohort_id, [learner])
        if report.enrolled:
            return report.enrolled[0]
        raise Conflict(f"the learner is already enrolled in this programme "
                       f"(enrolment {report.already_enrolled[0]})", "email")

    def import_csv(self, cohort_id: str, text: str) -> ImportReport:
        """Enrol every valid row; report the others. Rows already enrolled are counted,
        not enrolled again, so importing the same file twice is harmless."""
        learners, rejected = parse_learner_csv(text)
        report = self._enrol_many(cohort_id, [learner for _, learner in learners])
        report.rejected = rejected
        report.rows = len(learners) + len(rejected)
        return report

    def _enrol_many(self, cohort_id: str, learners: list[Learner]) -> ImportReport:
        now = self.clock()
        report = ImportReport()
        with self.new_uow() as uow:
            cohort = uow.repo.get_cohort(cohort_id)
            programme = uow.repo.get_programme(cohort.programme_id)
            existing = uow.repo.enrolled_learner_keys(programme.id, [lr.key for lr in learners])
            new = [enrol(self.new_id(), programme, cohort, learner, now)
                   for learner in learners if learner.key not in existing]
            report.already_enrolled = [existing[lr.key] for lr in learners if lr.key in existing]
            inserted = uow.repo.add_enrolments(new)
            report.enrolled = [e for e in new if e.id in inserted]  # only rows really inserted are announced
            uow.publish(*(statements.learner_enrolled(e, programme, cohort) for e in report.enrolled))
            uow.commit()
        return report

    def withdraw(self, enrolment_id: str, reason: str | None) -> Enrolment:
        with self.new_uow() as uow:
            enrolment = uow.repo.get_enrolment(enrolment_id).withdraw(reason, self.clock())
            if not uow.repo.save_withdrawal(enrolment):  # a concurrent withdrawal got there first
                raise Conflict("the enrolment is already withdrawn")
            cohort = uow.repo.get_cohort(enrolment.cohort_id)
            programme = uow.repo.get_programme(enrolment.programme_id)
            uow.publish(statements.learner_withdrew(enrolment, programme, cohort))
            uow.commit()
        return enrolment


@dataclass
class ImportReport:
    enrolled: list[Enrolment] = field(default_factory=list)
    already_enrolled: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    rows: int = 0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "enrolled": len(self.enrolled),
                "already_enrolled": len(self.already_enrolled), "rejected": self.rejected}


CSV_COLUMNS = ("name", "email", "account_home_page", "account_name", "organisation")


def parse_learner_csv(text: str) -> tuple[list[tuple[int, Learner]], list[dict]]:
    """Parse an enrolment CSV: good rows as learners, bad rows as {row, errors}.

    A file whose header cannot work is refused whole (DomainError naming the column);
    a bad row is reported by its line number and the import goes on.
    """
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _parse_learner_csv(reader)
    except csv.Error as exc:  # e.g. a field past the csv module's limit: no row could be valid
        raise DomainError(f"the CSV cannot be read at line {reader.line_num + 1}: {exc}", "file") from None


def _parse_learner_csv(reader: csv.DictReader) -> tuple[list[tuple[int, Learner]], list[dict]]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "name" not in header:
        raise DomainError("the CSV header must have a 'name' column", "file")
    if "email" not in header and not {"account_home_page", "account_name"} <= set(header):
        raise DomainError("the CSV header needs an 'email' column or 'account_home_page' and 'account_name'", "file")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise DomainError(f"unknown CSV columns: {', '.join(unknown)} (allowed: {', '.join(CSV_COLUMNS)})", "file")
    reader.fieldnames = header
    learners: list[tuple[int, Learner]] = []
    rejected: list[dict] = []
    first_row_of: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            rejected.append({"row": line, "errors": {"_row": ["more fields than the header has columns"]}})
            continue
        values = {k: v.strip() for k, v in record.items() if v is not None and v.strip()}
        try:
            learner = Learner(**_learner_schema.load(values))
        except ValidationError as exc:
            rejected.append({"row": line, "errors": _flatten(exc.messages)})
            continue
        if learner.key in first_row_of:
            rejected.append({"row": line, "errors": {"_row": [f"same learner as row {first_row_of[learner.key]}"]}})
            continue
        first_row_of[learner.key] = line
        learners.append((line, learner))
    return learners, rejected


def _flatten(messages) -> dict[str, list[str]]:
    if isinstance(messages, dict):
        return {k: v if isinstance(v, list) else [str(v)] for k, v in messages.items()}
    return {"_row": list(messages)}
