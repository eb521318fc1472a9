"""Assessment rules, in plain Python (no Flask, SQLAlchemy or Kafka): question banks,
final-test definitions, drawing, scoring, attempt rules and the pass/fail summary."""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.errors import Conflict, DomainError, NotFound
from shared.vocabulary import FAILED, FINAL_TEST_STATES, IN_PROGRESS, NOT_ATTEMPTED, PASSED


class Forbidden(DomainError):
    """The learner may not do this (withdrawn, past the deadline)."""

    status = 403


class InvalidBank(DomainError):
    """Every problem of an imported bank at once, keyed by the field at fault, so an
    author can fix the file in one go rather than one error per upload."""

    def __init__(self, problems: dict[str, list[str]]):
        first = next(iter(problems))
        super().__init__(f"the question bank has {len(problems)} invalid field(s); first: "
                         f"{first}: {problems[first][0]}", first, fields=problems)
        self.problems = problems


# --- questions and banks ----------------------------------------------------------------

SINGLE = "single_choice"
MULTIPLE = "multiple_choice"
TRUE_FALSE = "true_false"
QUESTION_TYPES = (SINGLE, MULTIPLE, TRUE_FALSE)
TRUE_FALSE_OPTIONS = ("true", "false")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    type: str
    options: tuple[str, ...]
    correct: frozenset[str]
    topic: str | None = None

    def public(self) -> dict:
        """What a learner sees: never the answers."""
        return {"id": self.id, "text": self.text, "type": self.type, "topic": self.topic,
                "options": list(self.options)}

    def as_dict(self) -> dict:
        return self.public() | {"correct": sorted(self.correct, key=self.options.index)}

    @classmethod
    def from_dict(cls, data: dict) -> Question:
        return cls(id=data["id"], text=data["text"], type=data["type"], options=tuple(data["options"]),
                   correct=frozenset(data["correct"]), topic=data.get("topic"))

    def credit(self, chosen: frozenset[str]) -> float:
        """1 for a right answer, 0 for a wrong or missing one. Multiple choice earns partial
        credit: (right options chosen - wrong options chosen) / right options, never below
        0, so ticking every box earns nothing rather than full marks."""
        if not chosen:
            return 0.0
        if self.type != MULTIPLE:
            return 1.0 if chosen == self.correct else 0.0
        hits = len(chosen & self.correct)
        misses = len(chosen - self.correct)
        return max(0.0, (hits - misses) / len(self.correct))


def _as_choices(value) -> list[str] | None:
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _question_problems(raw: dict) -> tuple[Question | None, dict[str, str]]:
    problems: dict[str, str] = {}
    kind = raw.get("type")
    options = raw.get("options")
    if kind == TRUE_FALSE:
        options = list(options or TRUE_FALSE_OPTIONS)
        if sorted(o.lower() for o in options) != sorted(TRUE_FALSE_OPTIONS):
            problems["options"] = "a true/false question has exactly the options 'true' and 'false'"
        options = [o.lower() for o in options]
    if not options or len(options) < 2:
        problems.setdefault("options", "a question needs at least two options")
        return None, problems
    if len(set(options)) != len(options):
        problems["options"] = "options must not repeat"
    correct = _as_choices(raw.get("correct"))
    if correct is None or not correct:
        problems["correct"] = "give the correct option(s): a string, a list of strings or true/false"
        return None, problems
    if kind == TRUE_FALSE:
        correct = [c.lower() for c in correct]
    missing = [c for c in correct if c not in options]
    if missing:
        problems["correct"] = f"{', '.join(map(repr, missing))} is not one of the question's options"
    elif kind in (SINGLE, TRUE_FALSE) and len(set(correct)) != 1:
        problems["correct"] = f"a {kind.replace('_', ' ')} question has exactly one correct option"
    if problems:
        return None, problems
    return Question(id=raw["id"], text=raw["text"], type=kind, options=tuple(options),
                    correct=frozenset(correct), topic=raw.get("topic") or None), problems


def build_bank(raw_questions: list[dict]) -> tuple[Question, ...]:
    """Validate a whole bank; raise InvalidBank naming every bad question and field."""
    problems: dict[str, list[str]] = {}
    questions: list[Question] = []
    first_with_id: dict[str, int] = {}
    first_with_text: dict[str, int] = {}
    for index, raw in enumerate(raw_questions):
        where = f"questions[{index}]"
        question, found = _question_problems(raw)
        for name, message in found.items():
            problems.setdefault(f"{where}.{name}", []).append(f"question {raw.get('id')!r}: {message}")
        if raw["id"] in first_with_id:
            problems.setdefault(f"{where}.id", []).append(
                f"duplicate question id {raw['id']!r} (also questions[{first_with_id[raw['id']]}])")
        first_with_id.setdefault(raw["id"], index)
        text = " ".join(raw["text"].split()).casefold()
        if text in first_with_text:
            problems.setdefault(f"{where}.text", []).append(
                f"question {raw['id']!r} repeats the text of questions[{first_with_text[text]}]")
        first_with_text.setdefault(text, index)
        if question is not None:
            questions.append(question)
    if not raw_questions:
        problems["questions"] = ["a bank needs at least one question"]
    if problems:
        raise InvalidBank(problems)
    return tuple(questions)


# --- the final test ---------------------------------------------------------------------

BEST = "best"
LAST = "last"


@dataclass(frozen=True)
class FinalTest:
    programme_id: str
    time_limit: timedelta
    pass_mark: float
    max_attempts: int = 1
    counting: str = BEST
    question_count: int | None = None
    # topic -> how many questions to draw from it; replaces question_count when given.
    per_topic: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        if bool(self.question_count) == bool(self.per_topic):
            raise DomainError("give either question_count or per_topic", "question_count")
        if any(n < 1 for _, n in self.per_topic):
            raise DomainError("draw at least one question per listed topic", "per_topic")
        if self.time_limit <= timedelta(0):
            raise DomainError("the time limit must be positive", "time_limit_seconds")
        if not 0 < self.pass_mark <= 1:
            raise DomainError("the pass mark is a fraction in (0, 1], e.g. 0.7", "pass_mark")
        if self.max_attempts < 1:
            raise DomainError("allow at least one attempt", "max_attempts")
        if self.counting not in (BEST, LAST):
            raise DomainError("counting is 'best' or 'last'", "counting")

    @property
    def total_questions(self) -> int:
        return self.question_count or sum(n for _, n in self.per_topic)


def draw(bank: tuple[Question, ...], test: FinalTest, seed: str) -> tuple[Question, ...]:
    """The questions of one attempt. Deterministic for a seed (the attempt id), so an
    attempt's paper can be reproduced from the bank version and the id alone."""
    rng = random.Random(seed)
    if not test.per_topic:
        if len(bank) < test.question_count:
            raise DomainError(f"the bank has {len(bank)} questions; the test draws {test.question_count}",
                              "question_count")
        return tuple(rng.sample(bank, test.question_count))
    drawn: list[Question] = []
    for topic, count in sorted(test.per_topic):
        pool = [q for q in bank if q.topic == topic]
        if len(pool) < count:
            raise DomainError(f"the bank has {len(pool)} questions on topic {topic!r}; the test draws {count}",
                              "per_topic")
        drawn += rng.sample(pool, count)
    rng.shuffle(drawn)  # topics interleaved, not in blocks
    return tuple(drawn)


def normalise_answers(questions: tuple[Question, ...], raw: dict) -> dict[str, frozenset[str]]:
    """Check a learner's answers against the drawn paper (422 naming the question)."""
    by_id = {q.id: q for q in questions}
    answers: dict[str, frozenset[str]] = {}
    for question_id, value in raw.items():
        question = by_id.get(question_id)
        where = f"answers.{question_id}"
        if question is None:
            raise DomainError(f"question {question_id!r} is not in this attempt", where)
        chosen = _as_choices(value)
        if chosen is None:
            raise DomainError("answer with an option, a list of options or true/false", where)
        if question.type == TRUE_FALSE:
            chosen = [c.lower() for c in chosen]
        unknown = [c for c in chosen if c not in question.options]
        if unknown:
            raise DomainError(f"{', '.join(map(repr, unknown))} is not an option of question {question_id!r}", where)
        if question.type != MULTIPLE and len(set(chosen)) > 1:
            raise DomainError(f"question {question_id!r} takes one answer", where)
        answers[question_id] = frozenset(chosen)
    return answers


@dataclass(frozen=True)
class Score:
    credits: dict[str, float]
    raw: float
    max: int
    scaled: float


def score(questions: tuple[Question, ...], answers: dict[str, frozenset[str]]) -> Score:
    credits = {q.id: q.credit(answers.get(q.id, frozenset())) for q in questions}
    raw = round(sum(credits.values()), 4)
    return Score(credits=credits, raw=raw, max=len(questions), scaled=round(raw / len(questions), 4))


# --- attempts ---------------------------------------------------------------------------

OPEN = "open"
SUBMITTED = "submitted"
TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class Attempt:
    id: str
    registration: str
    programme_id: str
    number: int
    questions: tuple[Question, ...]
    bank_version: int
    pass_mark: float
    started_at: datetime
    expires_at: datetime
    status: str = OPEN
    answers: dict[str, frozenset[str]] = field(default_factory=dict)
    finished_at: datetime | None = None
    score: Score | None = None

    @property
    def success(self) -> bool | None:
        return None if self.score is None else self.score.scaled >= self.pass_mark

    def expired(self, now: datetime) -> bool:
        return self.status == OPEN and now > self.expires_at

    def _ensure_open(self) -> None:
        if self.status != OPEN:
            raise Conflict(f"attempt {self.id} is already closed ({self.status})")

    def save(self, raw_answers: dict, now: datetime) -> Attempt:
        """Keep answers given so far; they are what counts if time runs out."""
        self._ensure_open()
        if self.expired(now):
            raise Conflict("the time limit has passed; the attempt is closed with the answers saved in time")
        return replace(self, answers=self.answers | normalise_answers(self.questions, raw_answers))

    def submit(self, raw_answers: dict, now: datetime) -> Attempt:
        """Close and score. Submitted late, the answers sent now are ignored and the
        attempt is scored with what was saved within the limit, as if it had timed out."""
        self._ensure_open()
        answers = normalise_answers(self.questions, raw_answers)
        if self.expired(now):
            return self.time_out()
        answers = self.answers | answers
        return replace(self, status=SUBMITTED, answers=answers, finished_at=now,
                       score=score(self.questions, answers))

    def time_out(self) -> Attempt:
        self._ensure_open()
        # Finished at the limit, not when someone noticed: the result must not depend
        # on when the attempt happened to be read.
        return replace(self, status=TIMED_OUT, finished_at=self.expires_at,
                       score=score(self.questions, self.answers))


@dataclass(frozen=True)
class Enrolment:
    """An enrolment as assessment knows it from the enrollment topic. `actor`,
    `programme` and `cohort` are the enrolment statement's own objects, copied into our
    statements so they name the learner, programme and cohort exactly as it did."""

    registration: str
    programme_id: str
    cohort_id: str | None
    learner_key: str
    active: bool
    deadline: datetime | None
    final_test: str = ""
    actor: dict = field(default_factory=dict)
    programme: dict = field(default_factory=dict)
    cohort: dict | None = None


@dataclass(frozen=True)
class Bank:
    """One imported version of a programme's question bank."""

    version: int
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class History:
    """The learner's attempts so far at this programme's final test (ours and an LMS's)."""

    used: int
    passed: bool
    open_attempt: str | None = None


def check_enrolment(enrolment: Enrolment | None, registration: str, now: datetime) -> None:
    if enrolment is None:
        raise NotFound(f"no enrolment {registration} is known here (yet: enrolments arrive from "
                       "the enrollment topic)", "registration")
    if not enrolment.active:
        raise Forbidden("the learner withdrew from the programme", "registration")
    if enrolment.deadline is not None and now > enrolment.deadline:
        raise Forbidden(f"the enrolment's deadline ({enrolment.deadline.isoformat()}) has passed", "registration")


def check_can_start(enrolment: Enrolment | None, registration: str, history: History,
                    test: FinalTest, now: datetime) -> None:
    check_enrolment(enrolment, registration, now)
    if history.passed:
        raise Conflict("the learner has already passed the final test", "registration")
    if history.open_attempt:
        raise Conflict(f"attempt {history.open_attempt} is still open; submit it first", "registration")
    if history.used >= test.max_attempts:
        raise Conflict(f"all {test.max_attempts} allowed attempt(s) are used", "registration")


# --- the read model's summary -------------------------------------------------------------

# The words are shared.vocabulary's: "failed" is out of attempts without a pass, and a
# learner whose attempts so far failed, with attempts left, is still in progress.
RESULT_STATUSES = FINAL_TEST_STATES


@dataclass(frozen=True)
class Outcome:
    """One attempt as the read model knows it: started, and perhaps finished."""

    id: str
    started_at: datetime | None
    finished_at: datetime | None = None
    scaled: float | None = None
    success: bool | None = None

    @property
    def finished(self) -> bool:
        return self.success is not None


@dataclass(frozen=True)
class Summary:
    attempts_used: int
    best_score: float | None
    latest_score: float | None
    counted_score: float | None
    status: str
    decided_at: datetime | None


def summarise(outcomes: list[Outcome], counting: str = BEST, max_attempts: int | None = None) -> Summary:
    """A learner's standing. Pure and order-free (sorted here), so a live read model and
    one rebuilt from the topics agree whatever order the statements arrived in."""
    finished = sorted((o for o in outcomes if o.finished), key=lambda o: (o.finished_at, o.id))
    if not outcomes:
        return Summary(0, None, None, None, NOT_ATTEMPTED, None)
    scores = [o.scaled for o in finished if o.scaled is not None]
    best_score = max(scores) if scores else None
    latest = finished[-1] if finished else None
    if counting == BEST and finished:
        # A pass beats any fail (an LMS may report success without a score); ties go to
        # the earliest, which is when the result was decided.
        counted = max(finished, key=lambda o: (o.success, o.scaled or 0.0, -finished.index(o)))
    else:
        counted = latest
    used = len(outcomes)
    if counted is not None and counted.success:
        status = PASSED
    elif any(not o.finished for o in outcomes) or (max_attempts is not None and used < max_attempts):
        status = IN_PROGRESS
    else:  # out of attempts; or no rule known (an LMS's results only), and then each result is final
        status = FAILED
    decided_at = {PASSED: counted.finished_at if counted else None,
                  FAILED: latest.finished_at if latest else None}.get(status)
    return Summary(used, best_score, latest.scaled if latest else None,
                   counted.scaled if counted else None, status, decided_at)
