"""Assessment's commands: validate, apply the rule, and write the new state and its
statements through one unit of work (shared.unit_of_work), so they commit together or
not at all (docs/architecture.md, Writing)."""
from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import timedelta

from marshmallow import ValidationError

from services.assessment import statements
from services.assessment.domain import (
    Attempt,
    Bank,
    Enrolment,
    FinalTest,
    InvalidBank,
    build_bank,
    check_can_start,
    check_enrolment,
    draw,
)
from services.assessment.repository import AssessmentRepository
from services.assessment.schemas import QuestionInSchema
from shared import xapi
from shared.errors import Conflict, DomainError
from shared.unit_of_work import UnitOfWork

_question_schema = QuestionInSchema()

Uow = UnitOfWork[AssessmentRepository]


class AssessmentCommands:
    """The write side: one method per command, one unit of work per method. `clock` is
    injectable so tests can put an attempt on either side of its time limit; `new_id`
    so they can name the attempt (its id seeds the draw of its questions)."""

    def __init__(self, new_uow: Callable[[], Uow], clock=xapi.utc_now,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())):
        self.new_uow = new_uow
        self.clock = clock
        self.new_id = new_id

    # --- question banks and the test definition --------------------------------------------

    def import_bank(self, programme_id: str, raw_questions: list[dict], operator: str) -> dict:
        """Store a new version of the programme's bank; attempts already drawn keep theirs."""
        questions = build_bank(raw_questions)
        now = self.clock()
        topics = sorted({q.topic for q in questions if q.topic})
        for tries_left in reversed(range(3)):  # two concurrent imports may pick the same version number
            try:
                with self.new_uow() as uow:
                    uow.repo.programme(programme_id)
                    current = uow.repo.final_test(programme_id)
                    if current is not None:  # refuse a bank the current test cannot draw from
                        draw(questions, current[0], seed="check")
                    bank = Bank(uow.repo.next_bank_version(programme_id), questions)
                    uow.repo.add_bank(programme_id, bank, topics, now, operator)
                    uow.commit()
                return {"programme_id": programme_id, "version": bank.version, "question_count": len(questions),
                        "topics": topics, "imported_at": now, "imported_by": operator}
            except Conflict:
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    def import_bank_csv(self, programme_id: str, text: str, operator: str) -> dict:
        return self.import_bank(programme_id, parse_bank_csv(text), operator)

    def define_final_test(self, programme_id: str, data: dict, operator: str) -> dict:
        seconds = data.get("time_limit_seconds") or (data.get("time_limit_minutes") or 0) * 60
        test = FinalTest(programme_id=programme_id, time_limit=timedelta(seconds=seconds),
                         pass_mark=data["pass_mark"], max_attempts=data["max_attempts"], counting=data["counting"],
                         question_count=data.get("question_count"),
                         per_topic=tuple(sorted((data.get("per_topic") or {}).items())))
        now = self.clock()
        with self.new_uow() as uow:
            programme = uow.repo.programme(programme_id)
            bank = uow.repo.latest_bank(programme_id)
            if bank is not None:  # refuse a test the current bank cannot fill
                draw(bank.questions, test, seed="check")
            current = uow.repo.final_test(programme_id)
            values = dict(activity_id=programme.final_test, revision=(current[1] if current else 0) + 1,
                          question_count=test.question_count,
                          per_topic=dict(test.per_topic) or None, time_limit_seconds=int(seconds),
                          pass_mark=test.pass_mark, max_attempts=test.max_attempts, counting=test.counting,
                          updated_at=now, updated_by=operator)
            uow.repo.save_final_test(programme_id, values)
            uow.publish(statements.final_test_defined(
                test, values["revision"], programme.final_test, programme.activity, operator, now))
            uow.commit()
        return {"programme_id": programme_id, **values}

    # --- attempts ---------------------------------------------------------------------------

    def start_attempt(self, registration: str) -> Attempt:
        now = self.clock()
        attempt_id = self.new_id()
        with self.new_uow() as uow:
            enrolment = uow.repo.enrolment(registration)
            check_enrolment(enrolment, registration, now)
            current = uow.repo.final_test(enrolment.programme_id)
            bank = uow.repo.latest_bank(enrolment.programme_id)
            if current is None or bank is None:
                missing = "final test" if current is None else "question bank"
                raise Conflict(f"the programme has no {missing} yet", "registration")
            for stale in uow.repo.open_attempts(registration):
                if stale.expired(now):  # a forgotten attempt must not block the next one
                    _close(uow, stale.time_out(), enrolment, strict=False)
            test = current[0]
            history = uow.repo.history(enrolment)
            check_can_start(enrolment, registration, history, test, now)
            attempt = Attempt(
                id=attempt_id, registration=registration, programme_id=enrolment.programme_id,
                number=history.used + 1, questions=draw(bank.questions, test, seed=attempt_id),
                bank_version=bank.version, pass_mark=test.pass_mark, started_at=now,
                expires_at=now + test.time_limit)
            uow.repo.add_attempt(attempt, enrolment.learner_key)
            uow.publish(statements.attempt_started(attempt, enrolment))
            uow.commit()
        return attempt

    def get_attempt(self, attempt_id: str) -> Attempt:
        """Read an attempt; one past its time limit is closed and scored first."""
        now = self.clock()
        with self.new_uow() as uow:
            attempt = uow.repo.get_attempt(attempt_id)
            if not attempt.expired(now):
                return attempt
            closed = attempt.time_out()
            if _close(uow, closed, uow.repo.enrolment(attempt.registration), strict=False):
                uow.commit()
                return closed
        with self.new_uow() as uow:  # someone else closed it meanwhile: theirs stands
            return uow.repo.get_attempt(attempt_id)

    def save_answers(self, attempt_id: str, answers: dict) -> Attempt:
        now = self.clock()
        with self.new_uow() as uow:
            attempt = uow.repo.get_attempt(attempt_id)
            if not attempt.expired(now):
                saved = attempt.save(answers, now)
                if not uow.repo.save_answers(saved):
                    raise Conflict(f"attempt {attempt_id} was closed meanwhile")
                uow.commit()
                return saved
        self.get_attempt(attempt_id)  # closes it, with what was saved in time
        raise Conflict("the time limit has passed; the attempt is closed and scored with the answers saved in time")

    def submit(self, attempt_id: str, answers: dict) -> Attempt:
        now = self.clock()
        with self.new_uow() as uow:
            attempt = uow.repo.get_attempt(attempt_id)
            finished = attempt.submit(answers, now)
            _close(uow, finished, uow.repo.enrolment(attempt.registration))
            uow.commit()
        return finished

    def close_expired(self, limit: int = 1000) -> int:
        """Close attempts nobody submitted or read after their time ran out (a sweep an
        operator or a scheduler runs, so the read model does not show them in progress).
        One unit of work per attempt: one that fails leaves the others closed."""
        now = self.clock()
        with self.new_uow() as uow:
            ids = uow.repo.expired_open_attempt_ids(now, limit)
        closed = 0
        for attempt_id in ids:
            with self.new_uow() as uow:
                attempt = uow.repo.get_attempt(attempt_id)
                if attempt.expired(now) and _close(uow, attempt.time_out(), uow.repo.enrolment(attempt.registration),
                                                   strict=False):
                    uow.commit()
                    closed += 1
        return closed


def _close(uow: Uow, attempt: Attempt, enrolment: Enrolment, strict: bool = True) -> bool:
    """Store a finished attempt if it is still open, and announce its result; of two
    concurrent closers exactly one gets True."""
    if not uow.repo.close(attempt):
        if strict:
            raise Conflict(f"attempt {attempt.id} was already submitted or closed")
        return False
    current = uow.repo.final_test(attempt.programme_id)  # the rule the read model applies
    uow.publish(*statements.attempt_finished(attempt, enrolment, current[0].max_attempts if current else None))
    return True


CSV_COLUMNS = ("id", "type", "topic", "text", "options", "correct")


def parse_bank_csv(text: str) -> list[dict]:
    """A bank as CSV: one question a row; `options` and `correct` separated by '|'."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _parse_bank_csv(reader)
    except csv.Error as exc:  # e.g. a field past the csv module's limit: no question could be valid
        raise DomainError(f"the CSV cannot be read at line {reader.line_num + 1}: {exc}", "file") from None


def _parse_bank_csv(reader: csv.DictReader) -> list[dict]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("id", "type", "text", "correct") if c not in header]
    if missing:
        raise DomainError(f"the CSV header lacks {', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)})", "file")
    reader.fieldnames = header
    questions, problems = [], {}
    for index, record in enumerate(reader):
        raw = {k: (v or "").strip() for k, v in record.items() if k in CSV_COLUMNS}
        for name in ("options", "correct"):
            raw[name] = [part.strip() for part in raw.get(name, "").split("|") if part.strip()] or None
        raw["topic"] = raw.get("topic") or None
        try:
            questions.append(_question_schema.load({k: v for k, v in raw.items() if v is not None}))
        except ValidationError as exc:
            for name, messages in exc.messages.items():
                problems[f"questions[{index}].{name}"] = [f"CSV line {reader.line_num}: {m}" for m in messages]
    if problems:
        raise InvalidBank(problems)
    return questions
