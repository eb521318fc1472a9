"""The dead-letter topic as a quarantine an operator can work with.

A service's dead letters (`learnstream.<service>.deadletter.v1`) are the records its
projections found unprocessable, each with the original record's key, value and headers
and the `dead-letter-*` headers saying where it came from and why. The quarantine lives
in that topic alone, like every other fact: `replay` re-applies dead letters through the
same projection code and then appends a record with no value whose `dead-letter-resolves`
header names the dead letter it settles (`partition:offset`) and `dead-letter-outcome`
what became of it. What is not resolved is still in quarantine.

A replay is idempotent by statement id: a record applied before (by this replay, an
earlier one cut short, or a redelivery) is not applied again. What still fails goes back
to the topic with its new reason, as a new dead letter, and the old one is resolved.
"""
from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, replace

from tqdm import tqdm

from shared import bus, events, xapi
from shared.bus import Record
from shared.consumer import (
    HEADER_CONSUMER,
    HEADER_OFFSET,
    HEADER_OUTCOME,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_RESOLVES,
    HEADER_TOPIC,
    ProjectionRunner,
)


@dataclass(frozen=True)
class DeadLetter:
    record: Record  # as it stands on the dead-letter topic
    reason: str
    topic: str  # where it was consumed from
    partition: int
    offset: int

    @property
    def where(self) -> str:
        return f"{self.record.partition}:{self.record.offset}"

    def original(self) -> Record:
        """The record as the projection first consumed it."""
        headers = [(k, v) for k, v in self.record.headers if not k.startswith("dead-letter-")]
        return replace(self.record, topic=self.topic, partition=self.partition, offset=self.offset, headers=headers)


def _text(record: Record, name: str, default: str = "") -> str:
    try:
        return events.header(record.headers, name) or default
    except Exception:  # quarantine shows what it can of a record whose headers are broken
        return default


def quarantined(runner: ProjectionRunner) -> list[DeadLetter]:
    """The service's dead letters not yet resolved, oldest first per partition."""
    records = bus.read_topics(runner.settings, [runner.settings.dead_letter_topic])
    resolved = {_text(r, HEADER_RESOLVES) for r in records if r.value is None}
    letters = []
    for r in records:
        if r.value is None and _text(r, HEADER_RESOLVES):
            continue
        if f"{r.partition}:{r.offset}" in resolved:
            continue
        letters.append(DeadLetter(r, _text(r, HEADER_REASON, "(no reason)"), _text(r, HEADER_TOPIC, "?"),
                                  int(_text(r, HEADER_PARTITION, "-1")), int(_text(r, HEADER_OFFSET, "-1"))))
    return letters


def counts_by_reason(letters: list[DeadLetter]) -> Counter:
    return Counter(letter.reason for letter in letters)


def resolution_headers(settings, letter: DeadLetter) -> list[tuple[str, bytes]]:
    """CloudEvents headers for a resolution marker (no data, so no content type or schema).
    Its id is derived from the dead letter it settles, so a marker published twice (a
    replay run again after a failure) dedupes like any other record."""
    subject = letter.record.key.decode(errors="replace") if letter.record.key else ""
    marker_id = uuid.uuid5(uuid.NAMESPACE_URL, f"kafka:{settings.dead_letter_topic}/{letter.where}")
    return [(events.CE_SPECVERSION, b"1.0"), (events.CE_ID, str(marker_id).encode()),
            (events.CE_SOURCE, events.ce_source(settings.service).encode()),
            (events.CE_TYPE, events.ce_type(events.DEAD_LETTER_RESOLVED).encode()),
            (events.CE_SUBJECT, subject.encode()), (events.CE_TIME, xapi.format_timestamp(xapi.utc_now()).encode())]


@dataclass(frozen=True)
class ReplayOutcome:
    applied: int
    still_failing: int


def replay(runner: ProjectionRunner, letters: list[DeadLetter], progress: bool = True,
           batch_size: int = 500) -> ReplayOutcome:
    """Re-apply `letters` through the projection (in the order they were dead-lettered),
    then resolve each. A passing error (the database away) raises with nothing resolved
    from the failed batch: run it again."""
    applied = failing = 0
    settings = runner.settings
    try:
        with tqdm(total=len(letters), unit="rec", desc=f"replay {settings.service} dead letters",
                  disable=not progress) as bar:
            for start in range(0, len(letters), batch_size):
                batch = letters[start:start + batch_size]
                by_original = {(r.topic, r.partition, r.offset): letter
                               for letter in batch for r in [letter.original()]}
                # No breaker: the operator asked for exactly these records.
                result = runner.process([letter.original() for letter in batch], store_offsets=False, breaker=False)
                dead = {(r.topic, r.partition, r.offset) for r in result.dead}
                marks = []
                for key, letter in by_original.items():
                    outcome = "dead-lettered again" if key in dead else "applied"
                    marks.append((settings.dead_letter_topic, letter.record.key, None, [
                        *resolution_headers(settings, letter),
                        (HEADER_RESOLVES, letter.where.encode()), (HEADER_OUTCOME, outcome.encode()),
                        (HEADER_CONSUMER, settings.service.encode())]))
                runner.publisher().publish(marks)
                failing += len(dead)
                applied += len(batch) - len(dead)
                bar.update(len(batch))
    finally:
        runner.close()
    return ReplayOutcome(applied, failing)
