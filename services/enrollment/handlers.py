"""Enrollment commands: validate, apply the rule, and in ONE transaction write the new
state and its statements to the outbox (docs/architecture.md, Writing)."""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field

from marshmallow import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.enrollment import repository, statements
from services.enrollment import tables as t
from services.enrollment.domain import Cohort, Enrolment, Learner, Programme, enrol
from shared import db, outbox, xapi
from shared.config import Settings
from shared.errors import Conflict, DomainError
from shared.schemas import LearnerSchema

_learner_schema = LearnerSchema()


class EnrollmentService:
    """The write side: one method per command, one transaction per method."""

    def __init__(self, settings: Settings, engine: Engine, clock=xapi.utc_now):
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def _publish(self, conn, events) -> None:
        outbox.append(conn, t.outbox, self.settings.own_topic, events)

    def define_programme(self, data: dict, operator: str) -> Programme:
        programme_id = str(uuid.uuid4())
        programme = Programme(
            id=programme_id, code=data["code"], title=data["title"],
            required_modules=tuple(data["required_modules"]), final_test=data["final_test"],
            window_days=data["window_days"],
            activity_id=f"{self.settings.activity_base}programmes/{data['code']}",
        )
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(t.programmes.insert().values(
                    id=programme.id, code=programme.code, title=programme.title,
                    required_modules=list(programme.required_modules), final_test=programme.final_test,
                    window_days=programme.window_days, activity_id=programme.activity_id, created_at=now))
                self._publish(conn, [statements.programme_defined(programme, operator, now)])
        except IntegrityError:
            raise Conflict(f"a programme with code {programme.code!r} exists", "code") from None
        return programme

    def define_cohort(self, data: dict, operator: str) -> Cohort:
        now = self.clock()
        cohort_id = str(uuid.uuid4())
        try:
            with self.engine.begin() as conn:
                programme = repository.get_programme(conn, data["programme_id"])
                cohort = Cohort(
                    id=cohort_id, programme_id=programme.id, name=data["name"], agency=data["agency"],
                    province=data["province"], wave=data["wave"], accounts_issued_at=data["accounts_issued_at"],
                    activity_id=f"{self.settings.activity_base}cohorts/{cohort_id}",
                )
                conn.execute(t.cohorts.insert().values(
                    id=cohort.id, programme_id=cohort.programme_id, name=cohort.name, agency=cohort.agency,
                    province=cohort.province, wave=cohort.wave, accounts_issued_at=cohort.accounts_issued_at,
                    activity_id=cohort.activity_id, created_at=now))
                self._publish(conn, [statements.cohort_defined(cohort, programme, operator, now)])
        except IntegrityError:
            raise Conflict(f"the programme already has a cohort named {data['name']!r}", "name") from None
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
        with self.engine.begin() as conn:
            cohort = repository.get_cohort(conn, cohort_id)
            programme = repository.get_programme(conn, cohort.programme_id)
            existing = repository.enrolled_learner_keys(conn, programme.id, [lr.key for lr in learners])
            new = [enrol(str(uuid.uuid4()), programme, cohort, learner, now)
                   for learner in learners if learner.key not in existing]
            report.already_enrolled = [existing[lr.key] for lr in learners if lr.key in existing]
            if new:
                # ON CONFLICT DO NOTHING: a concurrent import of the same learners wins
                # or loses row by row, and only rows really inserted are announced.
                inserted = set(db.insert_returning_new_ids(
                    conn, t.enrolments, [repository.enrolment_row(e) for e in new],
                    keys=["programme_id", "learner_key"]))
                report.enrolled = [e for e in new if e.id in inserted]
                self._publish(conn, [statements.learner_enrolled(e, programme, cohort) for e in report.enrolled])
        return report

    def withdraw(self, enrolment_id: str, reason: str | None) -> Enrolment:
        with self.engine.begin() as conn:
            enrolment = repository.get_enrolment(conn, enrolment_id).withdraw(reason, self.clock())
            updated = conn.execute(
                t.enrolments.update()
                .where(t.enrolments.c.id == enrolment.id, t.enrolments.c.status != enrolment.status)
                .values(status=enrolment.status, withdrawn_at=enrolment.withdrawn_at,
                        withdrawal_reason=enrolment.withdrawal_reason)).rowcount
            if updated != 1:  # a concurrent withdrawal got there first
                raise Conflict("the enrolment is already withdrawn")
            cohort = repository.get_cohort(conn, enrolment.cohort_id)
            programme = repository.get_programme(conn, enrolment.programme_id)
            self._publish(conn, [statements.learner_withdrew(enrolment, programme, cohort)])
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
