"""Loading and storing assessment's domain objects (the only module that maps rows).

`AssessmentRepository` is what the commands see through their unit of work; the
module's functions also serve the read queries (queries.py)."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.assessment import tables as t
from services.assessment.domain import OPEN, Attempt, Bank, Enrolment, FinalTest, History, Question, Score
from shared import db
from shared.errors import NotFound
from shared.vocabulary import ENROLLED

LRS = "lrs"
OWN = "assessment"


def get_programme(conn: Connection, programme_id: str):
    row = conn.execute(sa.select(t.known_programmes).where(t.known_programmes.c.id == programme_id)).first()
    if row is None:
        raise NotFound(f"no programme {programme_id} is known here (yet: programmes arrive from the "
                       "enrollment topic)", "programme_id")
    return row


def enrolment_row(conn: Connection, registration: str):
    return conn.execute(sa.select(t.known_enrolments)
                        .where(t.known_enrolments.c.registration == registration)).first()


def enrolment_from_row(row) -> Enrolment | None:
    if row is None:
        return None
    return Enrolment(registration=row.registration, programme_id=row.programme_id, cohort_id=row.cohort_id,
                     learner_key=row.learner_key, active=row.status == ENROLLED, deadline=row.deadline,
                     final_test=row.final_test, actor=row.actor, programme=row.programme, cohort=row.cohort)


def final_test_from_row(row) -> FinalTest:
    return FinalTest(programme_id=row.programme_id, time_limit=timedelta(seconds=row.time_limit_seconds),
                     pass_mark=row.pass_mark, max_attempts=row.max_attempts, counting=row.counting,
                     question_count=row.question_count,
                     per_topic=tuple(sorted((row.per_topic or {}).items())))


def final_test_row(conn: Connection, programme_id: str):
    return conn.execute(sa.select(t.final_tests).where(t.final_tests.c.programme_id == programme_id)).first()


def latest_bank(conn: Connection, programme_id: str):
    return conn.execute(sa.select(t.question_banks).where(t.question_banks.c.programme_id == programme_id)
                        .order_by(t.question_banks.c.version.desc()).limit(1)).first()


def next_bank_version(conn: Connection, programme_id: str) -> int:
    current = conn.scalar(sa.select(sa.func.max(t.question_banks.c.version))
                          .where(t.question_banks.c.programme_id == programme_id))
    return (current or 0) + 1


def bank_questions(row) -> tuple[Question, ...]:
    return tuple(Question.from_dict(q) for q in row.questions)


def _answers_out(answers: dict) -> dict:
    return {qid: sorted(chosen) for qid, chosen in answers.items()}


def attempt_values(attempt: Attempt) -> dict:
    """The columns a command changes (status, answers, result)."""
    score = attempt.score
    return {"status": attempt.status, "answers": _answers_out(attempt.answers), "finished_at": attempt.finished_at,
            "scaled": score.scaled if score else None, "raw": score.raw if score else None,
            "credits": score.credits if score else None}


def attempt_row(attempt: Attempt, learner_key: str) -> dict:
    return {"id": attempt.id, "registration": attempt.registration, "programme_id": attempt.programme_id,
            "learner_key": learner_key, "number": attempt.number, "bank_version": attempt.bank_version,
            "questions": [q.as_dict() for q in attempt.questions], "pass_mark": attempt.pass_mark,
            "started_at": attempt.started_at, "expires_at": attempt.expires_at} | attempt_values(attempt)


def attempt_from_row(row) -> Attempt:
    questions = tuple(Question.from_dict(q) for q in row.questions)
    score = None
    if row.scaled is not None:
        score = Score(credits=row.credits or {}, raw=row.raw, max=len(questions), scaled=row.scaled)
    return Attempt(id=row.id, registration=row.registration, programme_id=row.programme_id, number=row.number,
                   questions=questions, bank_version=row.bank_version, pass_mark=row.pass_mark,
                   started_at=row.started_at, expires_at=row.expires_at, status=row.status,
                   answers={qid: frozenset(chosen) for qid, chosen in (row.answers or {}).items()},
                   finished_at=row.finished_at, score=score)


def get_attempt(conn: Connection, attempt_id: str) -> Attempt:
    row = conn.execute(sa.select(t.attempts).where(t.attempts.c.id == attempt_id)).first()
    if row is None:
        raise NotFound(f"no attempt {attempt_id}")
    return attempt_from_row(row)


def open_attempts(conn: Connection, registration: str) -> list[Attempt]:
    rows = conn.execute(sa.select(t.attempts).where(t.attempts.c.registration == registration,
                                                    t.attempts.c.status == OPEN)).all()
    return [attempt_from_row(row) for row in rows]


def close(conn: Connection, attempt: Attempt) -> bool:
    """Write a closed attempt only if it is still open: of two concurrent closers
    (submissions, a time-out noticed on read) exactly one gets True."""
    return conn.execute(t.attempts.update()
                        .where(t.attempts.c.id == attempt.id, t.attempts.c.status == OPEN)
                        .values(**attempt_values(attempt))).rowcount == 1


def save_answers(conn: Connection, attempt: Attempt) -> bool:
    return conn.execute(t.attempts.update()
                        .where(t.attempts.c.id == attempt.id, t.attempts.c.status == OPEN)
                        .values(answers=_answers_out(attempt.answers))).rowcount == 1


def history(conn: Connection, enrolment: Enrolment) -> History:
    """Our attempts plus the results an LMS reported for this learner's final test."""
    own = conn.execute(sa.select(t.attempts.c.id, t.attempts.c.status, t.attempts.c.scaled,
                                 t.attempts.c.pass_mark)
                       .where(t.attempts.c.registration == enrolment.registration)).all()
    external = conn.execute(sa.select(t.attempt_log.c.success).where(
        t.attempt_log.c.source == LRS, t.attempt_log.c.learner_key == enrolment.learner_key,
        t.attempt_log.c.activity_id == enrolment.final_test)).scalars().all()
    passed = any(r.scaled is not None and r.scaled >= r.pass_mark for r in own) or any(external)
    open_ids = [r.id for r in own if r.status == OPEN]
    return History(used=len(own) + len(external), passed=passed, open_attempt=open_ids[0] if open_ids else None)


def expired_open_attempt_ids(conn: Connection, now, limit: int) -> list[str]:
    return list(conn.scalars(sa.select(t.attempts.c.id)
                             .where(t.attempts.c.status == OPEN, t.attempts.c.expires_at < now)
                             .order_by(t.attempts.c.expires_at).limit(limit)))


class AssessmentRepository:
    """Assessment's state inside one unit of work: reads and writes over its connection.
    A uniqueness the database enforces is reported as `Conflict`, as the in-memory
    repository of the unit tests does."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def programme(self, programme_id: str):
        """The programme as the enrollment topic defined it (`.final_test`, `.activity`)."""
        return get_programme(self.conn, programme_id)

    def enrolment(self, registration: str) -> Enrolment | None:
        return enrolment_from_row(enrolment_row(self.conn, registration))

    def final_test(self, programme_id: str) -> tuple[FinalTest, int] | None:
        """The programme's test and its revision, if one is defined."""
        row = final_test_row(self.conn, programme_id)
        return None if row is None else (final_test_from_row(row), row.revision)

    def save_final_test(self, programme_id: str, values: dict) -> None:
        ft = t.final_tests
        if self.conn.execute(ft.update().where(ft.c.programme_id == programme_id).values(**values)).rowcount == 0:
            self.conn.execute(ft.insert().values(programme_id=programme_id, **values))

    def latest_bank(self, programme_id: str) -> Bank | None:
        row = latest_bank(self.conn, programme_id)
        return None if row is None else Bank(row.version, bank_questions(row))

    def next_bank_version(self, programme_id: str) -> int:
        return next_bank_version(self.conn, programme_id)

    def add_bank(self, programme_id: str, bank: Bank, topics: list[str], imported_at, imported_by: str) -> None:
        # Two concurrent imports may pick the same version number: one of them is refused.
        with db.unique_or_conflict("another import of this bank is under way; retry"):
            self.conn.execute(t.question_banks.insert().values(
                programme_id=programme_id, version=bank.version, questions=[q.as_dict() for q in bank.questions],
                question_count=len(bank.questions), topics=topics, imported_at=imported_at,
                imported_by=imported_by))

    def get_attempt(self, attempt_id: str) -> Attempt:
        return get_attempt(self.conn, attempt_id)

    def open_attempts(self, registration: str) -> list[Attempt]:
        return open_attempts(self.conn, registration)

    def add_attempt(self, attempt: Attempt, learner_key: str) -> None:
        with db.unique_or_conflict("another attempt was started at the same moment", "registration"):
            self.conn.execute(t.attempts.insert().values(**attempt_row(attempt, learner_key)))

    def close(self, attempt: Attempt) -> bool:
        return close(self.conn, attempt)

    def save_answers(self, attempt: Attempt) -> bool:
        return save_answers(self.conn, attempt)

    def history(self, enrolment: Enrolment) -> History:
        return history(self.conn, enrolment)

    def expired_open_attempt_ids(self, now, limit: int) -> list[str]:
        return expired_open_attempt_ids(self.conn, now, limit)
