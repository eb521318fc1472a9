"""Assessment commands: validate, apply the rule, and in ONE transaction write the new
state and its statements to the outbox (docs/architecture.md, Writing)."""
from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

from marshmallow import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.assessment import repository as repo
from services.assessment import statements
from services.assessment import tables as t
from services.assessment.domain import (
    Attempt,
    FinalTest,
    InvalidBank,
    build_bank,
    check_can_start,
    check_enrolment,
    draw,
)
from services.assessment.schemas import QuestionInSchema
from shared import outbox, xapi
from shared.config import Settings
from shared.errors import Conflict, DomainError

_question_schema = QuestionInSchema()


class AssessmentService:
    """The write side: one method per command, one transaction per method. `clock` is
    injectable so tests can put an attempt on either side of its time limit."""

    def __init__(self, settings: Settings, engine: Engine, clock=xapi.utc_now):
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def _publish(self, conn, events) -> None:
        outbox.append(conn, t.outbox, self.settings.own_topic, events)

    # --- question banks and the test definition --------------------------------------------

    def import_bank(self, programme_id: str, raw_questions: list[dict], operator: str) -> dict:
        """Store a new version of the programme's bank; attempts already drawn keep theirs."""
        questions = build_bank(raw_questions)
        now = self.clock()
        topics = sorted({q.topic for q in questions if q.topic})
        for _ in range(3):  # two concurrent imports may pick the same version number
            try:
                with self.engine.begin() as conn:
                    repo.get_programme(conn, programme_id)
                    test_row = repo.final_test_row(conn, programme_id)
                    if test_row is not None:  # refuse a bank the current test cannot draw from
                        draw(questions, repo.final_test_from_row(test_row), seed="check")
                    version = repo.next_bank_version(conn, programme_id)
                    conn.execute(t.question_banks.insert().values(
                        programme_id=programme_id, version=version, questions=[q.as_dict() for q in questions],
                        question_count=len(questions), topics=topics, imported_at=now, imported_by=operator))
                return {"programme_id": programme_id, "version": version, "question_count": len(questions),
                        "topics": topics, "imported_at": now, "imported_by": operator}
            except IntegrityError:
                continue
        raise Conflict("another import of this bank is under way; retry")

    def import_bank_csv(self, programme_id: str, text: str, operator: str) -> dict:
        return self.import_bank(programme_id, parse_bank_csv(text), operator)

    def define_final_test(self, programme_id: str, data: dict, operator: str) -> dict:
        seconds = data.get("time_limit_seconds") or (data.get("time_limit_minutes") or 0) * 60
        test = FinalTest(programme_id=programme_id, time_limit=timedelta(seconds=seconds),
                         pass_mark=data["pass_mark"], max_attempts=data["max_attempts"], counting=data["counting"],
                         question_count=data.get("question_count"),
                         per_topic=tuple(sorted((data.get("per_topic") or {}).items())))
        now = self.clock()
        with self.engine.begin() as conn:
            programme = repo.get_programme(conn, programme_id)
            bank = repo.latest_bank(conn, programme_id)
            if bank is not None:  # refuse a test the current bank cannot fill
                draw(repo.bank_questions(bank), test, seed="check")
            current = repo.final_test_row(conn, programme_id)
            values = dict(activity_id=programme.final_test, revision=(current.revision if current else 0) + 1,
                          question_count=test.question_count,
                          per_topic=dict(test.per_topic) or None, time_limit_seconds=int(seconds),
                          pass_mark=test.pass_mark, max_attempts=test.max_attempts, counting=test.counting,
                          updated_at=now, updated_by=operator)
            if conn.execute(t.final_tests.update().where(t.final_tests.c.programme_id == programme_id)
                            .values(**values)).rowcount == 0:
                conn.execute(t.final_tests.insert().values(programme_id=programme_id, **values))
            self._publish(conn, [statements.final_test_defined(
                test, values["revision"], programme.final_test, programme.activity, operator, now)])
        return {"programme_id": programme_id, **values}

    # --- attempts ---------------------------------------------------------------------------

    def start_attempt(self, registration: str) -> Attempt:
        now = self.clock()
        attempt_id = str(uuid.uuid4())
        try:
            with self.engine.begin() as conn:
                enrolment = repo.enrolment_row(conn, registration)
                check_enrolment(repo.enrolment_from_row(enrolment), registration, now)
                test_row = repo.final_test_row(conn, enrolment.programme_id)
                bank = repo.latest_bank(conn, enrolment.programme_id)
                if test_row is None or bank is None:
                    missing = "final test" if test_row is None else "question bank"
                    raise Conflict(f"the programme has no {missing} yet", "registration")
                for stale in repo.open_attempts(conn, registration):
                    if stale.expired(now):  # a forgotten attempt must not block the next one
                        self._close(conn, stale.time_out(), enrolment, strict=False)
                test = repo.final_test_from_row(test_row)
                history = repo.history(conn, enrolment)
                check_can_start(repo.enrolment_from_row(enrolment), registration, history, test, now)
                attempt = Attempt(
                    id=attempt_id, registration=registration, programme_id=enrolment.programme_id,
                    number=history.used + 1, questions=draw(repo.bank_questions(bank), test, seed=attempt_id),
                    bank_version=bank.version, pass_mark=test.pass_mark, started_at=now,
                    expires_at=now + test.time_limit)
                conn.execute(t.attempts.insert().values(**repo.attempt_row(attempt, enrolment.learner_key)))
                self._publish(conn, [statements.attempt_started(attempt, enrolment)])
        except IntegrityError:
            raise Conflict("another attempt was started at the same moment", "registration") from None
        return attempt

    def get_attempt(self, attempt_id: str) -> Attempt:
        """Read an attempt; one past its time limit is closed and scored first."""
        now = self.clock()
        with self.engine.begin() as conn:
            attempt = repo.get_attempt(conn, attempt_id)
            if not attempt.expired(now):
                return attempt
            closed = attempt.time_out()
            if self._close(conn, closed, repo.enrolment_row(conn, attempt.registration), strict=False):
                return closed
        with self.engine.begin() as conn:  # someone else closed it meanwhile: theirs stands
            return repo.get_attempt(conn, attempt_id)

    def save_answers(self, attempt_id: str, answers: dict) -> Attempt:
        now = self.clock()
        with self.engine.begin() as conn:
            attempt = repo.get_attempt(conn, attempt_id)
            if not attempt.expired(now):
                saved = attempt.save(answers, now)
                if not repo.save_answers(conn, saved):
                    raise Conflict(f"attempt {attempt_id} was closed meanwhile")
                return saved
        self.get_attempt(attempt_id)  # closes it, with what was saved in time
        raise Conflict("the time limit has passed; the attempt is closed and scored with the answers saved in time")

    def submit(self, attempt_id: str, answers: dict) -> Attempt:
        now = self.clock()
        with self.engine.begin() as conn:
            attempt = repo.get_attempt(conn, attempt_id)
            finished = attempt.submit(answers, now)
            self._close(conn, finished, repo.enrolment_row(conn, attempt.registration))
        return finished

    def close_expired(self, limit: int = 1000) -> int:
        """Close attempts nobody submitted or read after their time ran out (a sweep an
        operator or a scheduler runs, so the read model does not show them in progress)."""
        now = self.clock()
        with self.engine.begin() as conn:
            ids = repo.expired_open_attempt_ids(conn, now, limit)
        closed = 0
        for attempt_id in ids:
            with self.engine.begin() as conn:
                attempt = repo.get_attempt(conn, attempt_id)
                if attempt.expired(now):
                    closed += self._close(conn, attempt.time_out(), repo.enrolment_row(conn, attempt.registration),
                                          strict=False)
        return closed

    def _close(self, conn, attempt: Attempt, enrolment, strict: bool = True) -> bool:
        if not repo.close(conn, attempt):
            if strict:
                raise Conflict(f"attempt {attempt.id} was already submitted or closed")
            return False
        test_row = repo.final_test_row(conn, attempt.programme_id)  # the rule the read model applies
        self._publish(conn, statements.attempt_finished(attempt, enrolment,
                                                        test_row.max_attempts if test_row else None))
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
