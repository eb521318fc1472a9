"""What a learner's progress is, in plain Python: from the facts the topics carry
(enrolment, activity on modules, final-test verdicts, certificate) to the figures
operators see. No Flask, SQLAlchemy or Kafka here."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from shared import xapi
from shared.vocabulary import ENROLLED, FAILED, IN_PROGRESS, NOT_ATTEMPTED, PASSED

# A module counts as done on any of these (a player may report passed/satisfied instead).
COMPLETION_VERBS = frozenset({xapi.COMPLETED.id, xapi.PASSED.id, xapi.SATISFIED.id})

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")


@functools.lru_cache(maxsize=4096)  # players send the same few durations again and again
def duration_seconds(text: str | None) -> float:
    """ISO 8601 duration as xAPI uses it (PT1H2M3.5S); 0 for anything unreadable, so a
    player's odd duration never blocks its completion from counting."""
    if not text:
        return 0.0
    match = _DURATION.match(text)
    if not match:
        return 0.0
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (parts.get("days", 0) * 86400 + parts.get("hours", 0) * 3600
            + parts.get("minutes", 0) * 60 + parts.get("seconds", 0))


@dataclass(frozen=True)
class Activity:
    """What one learner did on one activity, accumulated over statements in any order."""

    first_at: datetime
    last_at: datetime
    completed_at: datetime | None
    seconds: float


def merge_activity(old: Activity | None, new: Activity) -> Activity:
    """Two statements' worth of activity on one activity, in either order."""
    if old is None:
        return new
    completions = [c for c in (old.completed_at, new.completed_at) if c is not None]
    return Activity(min(old.first_at, new.first_at), max(old.last_at, new.last_at),
                    min(completions) if completions else None, old.seconds + new.seconds)




@dataclass(frozen=True)
class Verdict:
    status: str  # NOT_ATTEMPTED, IN_PROGRESS, PASSED or FAILED
    attempts: int = 0
    best_score: float | None = None
    decided_at: datetime | None = None


class Outcome(NamedTuple):
    """A final-test result: a verdict statement of the assessment service or an LMS's."""

    success: bool
    score: float | None
    at: datetime
    attempt: str | None = None  # the assessment's attempt id; an LMS's result is an attempt of its own
    used: int | None = None     # attempts used and allowed, as the result statement says
    allowed: int | None = None  # (absent from an LMS's and from older assessment statements)


@dataclass(frozen=True)
class Progress:
    modules_required: int
    modules_completed: int
    modules_completed_at: datetime | None
    first_activity_at: datetime | None
    last_activity_at: datetime | None
    time_spent_seconds: float
    finished_at: datetime | None

    @property
    def percent(self) -> float:
        return percent(self.modules_completed, self.modules_required)


def percent(completed: int, required: int) -> float:
    return round(100 * completed / required, 1) if required else 0.0


def summarise(required_modules: list[str], final_test: str, activities: dict[str, Activity],
              verdict: Verdict) -> Progress:
    """A learner's standing in a programme. Finished = every module completed and the
    final test passed; `finished_at` is when the later of the two happened."""
    relevant = [activities[a] for a in [*required_modules, final_test] if a in activities]
    completions = [activities[m].completed_at for m in required_modules
                   if m in activities and activities[m].completed_at is not None]
    all_done = bool(required_modules) and len(completions) == len(required_modules)
    modules_completed_at = max(completions) if all_done else None
    return Progress(
        modules_required=len(required_modules),
        modules_completed=len(completions),
        modules_completed_at=modules_completed_at,
        first_activity_at=min((a.first_at for a in relevant), default=None),
        last_activity_at=max((a.last_at for a in relevant), default=None),
        time_spent_seconds=round(sum(a.seconds for a in relevant), 3),
        finished_at=finished_at(modules_completed_at, verdict.status, verdict.decided_at),
    )


def finished_at(modules_completed_at: datetime | None, final_test_status: str,
                final_test_decided_at: datetime | None) -> datetime | None:
    """When a learner finished: the later of their last module's completion (set once
    every module is completed) and the final test's pass; None before both."""
    if modules_completed_at is None or final_test_status != PASSED or final_test_decided_at is None:
        return None
    return max(modules_completed_at, final_test_decided_at)


def merge_verdicts(outcomes: list[Outcome | tuple], started: set[str] | frozenset[str] = frozenset()) -> Verdict:
    """Final-test attempts in any order: the results (success, scaled score, when, ...) and
    the ids of attempts the assessment service opened (`started`). An attempt counts from
    its start, as assessment counts it. Passed once any attempt passed (decided at the
    first pass). Failed only when out of attempts: the latest result that says how many
    are allowed decides; a result that never says (an LMS's, an older statement) is final
    as it always was. Otherwise, with an attempt open or attempts left, in progress."""
    outcomes = [Outcome(*o) for o in outcomes]
    finished = {o.attempt for o in outcomes if o.attempt}
    attempts = len(set(started) | finished) + sum(1 for o in outcomes if not o.attempt)
    if not attempts:
        return Verdict(NOT_ATTEMPTED)
    scores = [o.score for o in outcomes if o.score is not None]
    best = max(scores) if scores else None
    passes = [o.at for o in outcomes if o.success]
    if passes:
        return Verdict(PASSED, attempts, best, min(passes))
    if set(started) - finished:
        return Verdict(IN_PROGRESS, attempts, best)
    told = [o for o in outcomes if o.allowed is not None]
    if told:
        latest = max(told, key=lambda o: o.at)
        if max(attempts, latest.used or 0) < latest.allowed:
            return Verdict(IN_PROGRESS, attempts, best)
    return Verdict(FAILED, attempts, best, max(o.at for o in outcomes))


def is_overdue(status: str, deadline: datetime | None, finished_at: datetime | None, now: datetime) -> bool:
    """Past the deadline without finishing, while still enrolled. Decided by the clock:
    nobody has to send a statement for a learner to become overdue."""
    return status == ENROLLED and deadline is not None and deadline < now and finished_at is None
