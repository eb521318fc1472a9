"""Forwarding rules, in plain Python (no Flask, SQLAlchemy, Kafka or HTTP).

- `Filter`: which statements a target wants (verbs, activities, cohorts, agencies, event
  types), decided from the statement and what the catalog knows of its learner.
- `verdict`: what a target's answer to a POST of statements means (delivered, refused
  for good, try again later, or split the batch and ask again).
- `Backoff`: the capped exponential delay between tries of a failing target.
- `outgoing`: the statement as it is sent to another LRS.

These are what decide "nothing lost, nothing doubled, order kept"; they are unit-tested
on their own (tests/unit/test_forwarding_domain.py).
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.errors import DomainError

XAPI_VERSIONS = ("1.0.3", "2.0.0")
MAX_BATCH_SIZE = 500
MAX_TIMEOUT_SECONDS = 120


# --- the filter ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What the forwarder knows of one statement when it decides whether to send it."""

    event_type: str | None
    verb: str
    activities: frozenset[str]  # the object's id and every context activity's id
    cohorts: frozenset[str]  # the cohorts the statement belongs to (see services.forwarding.catalog)
    agencies: frozenset[str]


@dataclass(frozen=True)
class Filter:
    """Every list that is not empty must match (AND across lists, OR within one); an
    empty filter forwards everything. `event_types` names `shared.events.EventType`
    values; an LMS statement on the LRS topic without a type counts as `lrs.statement`."""

    verbs: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()
    cohorts: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: dict | None) -> Filter:
        raw = raw or {}
        return cls(**{name: tuple(raw.get(name) or ()) for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}

    @property
    def needs_catalog(self) -> bool:
        """Whether deciding needs the enrolments (a cohort or agency filter)."""
        return bool(self.cohorts or self.agencies)

    def matches(self, facts: Facts) -> bool:
        return ((not self.verbs or facts.verb in self.verbs)
                and (not self.activities or not facts.activities.isdisjoint(self.activities))
                and (not self.cohorts or not facts.cohorts.isdisjoint(self.cohorts))
                and (not self.agencies or not facts.agencies.isdisjoint(self.agencies))
                and (not self.event_types or (facts.event_type or "lrs.statement") in self.event_types))


def statement_activities(statement: dict) -> frozenset[str]:
    found = set()
    obj = statement.get("object") or {}
    if obj.get("objectType", "Activity") == "Activity" and obj.get("id"):
        found.add(obj["id"])
    for items in ((statement.get("context") or {}).get("contextActivities") or {}).values():
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict) and item.get("id"):
                found.add(item["id"])
    return frozenset(found)


# --- what a target's answer means -------------------------------------------------------------------

class Verdict(enum.Enum):
    DELIVERED = "delivered"  # stored (2xx), or that id is stored already (409)
    SPLIT = "split"          # a batch refused: ask again in halves, to find the statement(s) at fault
    REFUSED = "refused"      # this one statement refused for good: quarantine it
    RETRY = "retry"          # the target, not the statement: try the same again after a backoff


# Answers about the target rather than any statement: wrong credentials (401, 407), a
# wrong URL (404, 405), a timeout (408), too many requests (429). Quarantining on them
# would empty the whole stream into the quarantine on one bad password; they are retried
# with backoff and shown on the status page until an operator fixes the target.
TARGET_PROBLEMS = frozenset({401, 404, 405, 407, 408, 429})


def verdict(status: int | None, batch_size: int) -> Verdict:
    """`status` None: no answer (connection refused or reset, timeout)."""
    if status is None or status >= 500 or status in TARGET_PROBLEMS:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 409:
        # xAPI: a POST is all or nothing, and 409 says an id in it is stored with other
        # content. For one statement that is "already stored": delivered (the target's
        # copy stands). For a batch it says nothing about the others, none of which was
        # stored: split until each 409 is about one statement.
        return Verdict.DELIVERED if batch_size == 1 else Verdict.SPLIT
    if 400 <= status < 500:
        return Verdict.REFUSED if batch_size == 1 else Verdict.SPLIT
    return Verdict.RETRY  # 1xx/3xx: not an answer an LRS gives to a POST; do not guess


def halves(items: list) -> tuple[list, list]:
    middle = (len(items) + 1) // 2
    return items[:middle], items[middle:]


@dataclass
class Backoff:
    """Capped exponential backoff: first, 2x, 4x ... up to `cap` seconds; reset on success."""

    cap: float
    first: float = 0.5
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * 2 ** self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Breaker:
    """More than `limit` statements refused in a row stop the target's forwarding (its
    offsets stay before the batch that tripped it): a target refusing everything (a
    contract change on its side) must not move the whole stream into quarantine."""

    limit: int
    in_a_row: int = 0

    def count(self, refused: Iterable[bool]) -> bool:
        """Count a batch's outcomes in order (True: refused); True if the limit is passed."""
        for was_refused in refused:
            self.in_a_row = self.in_a_row + 1 if was_refused else 0
        return self.in_a_row > self.limit


# --- what is sent --------------------------------------------------------------------------------

# Set by the LRS that stores a statement, not by whoever sends it (xAPI 2.4.8, 2.4.9):
# the target sets its own. `timestamp` and `authority` stay: when it happened, and who
# first vouched for it.
LRS_SET = ("stored", "version")


def outgoing(statement: dict) -> dict:
    return {k: v for k, v in statement.items() if k not in LRS_SET}


# --- targets -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    id: str
    name: str
    url: str  # the LRS endpoint; statements go to <url>/statements
    xapi_version: str
    username: str = field(repr=False, default="")
    password: str = field(repr=False, default="")  # never in repr, logs or answers
    filter: Filter = Filter()
    enabled: bool = True
    batch_size: int = 100
    timeout_seconds: float = 10.0
    revision: int = 1  # bumped by every change: the forwarder restarts the target's loop

    @property
    def statements_url(self) -> str:
        return self.url.rstrip("/") + "/statements"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DomainError("the LRS endpoint must be an http or https URL", "url")
    if parts.username or parts.password:
        # Credentials in a URL end up in logs and answers: they go in username/password.
        raise DomainError("put the credentials in username and password, not in the URL", "url")
    if parts.query or parts.fragment:
        raise DomainError("the LRS endpoint takes no query or fragment", "url")
    return url.rstrip("/")
