"""Projections: consume topics into read models (docs/architecture.md, Reading).

A polled batch, the read-model changes it causes, the statement ids it processed and the
next offsets all commit in one database transaction; Kafka's committed offsets follow
only after that, and on (re)assignment the consumer seeks to the offsets in the database.
So a crash anywhere neither loses nor double-counts a fact, and a statement published
twice by the relay is applied once. A record that cannot be parsed or applied goes to
the service's dead-letter topic with the reason, and consumption goes on.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from shared import bus, db, events, xapi
from shared.config import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Connection, list[dict]], None]

# How long polls may bring nothing before the runner checks that it is not stuck.
STALL_CHECK_S = 30.0

APPLIED = Counter("learnstream_projection_applied_total", "Statements applied to read models", ["service"])
DUPLICATES = Counter("learnstream_projection_duplicates_total", "Redelivered statements skipped", ["service"])
DEAD_LETTERS = Counter("learnstream_projection_dead_letters_total", "Records sent to the dead-letter topic",
                       ["service"])


@dataclass(frozen=True)
class Projection:
    """What a service's worker consumes: which topics, which handler per event type,
    and which read-model tables it owns (cleared and refilled by a rebuild)."""

    topics: list[str]
    handlers: Mapping[str, Handler]
    tables: list[sa.Table] = field(default_factory=list)


def define_consumer_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    offsets = sa.Table(
        "consumer_offsets", metadata,
        sa.Column("topic", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    processed = sa.Table(
        "processed_statements", metadata,
        sa.Column("statement_id", sa.String(36), primary_key=True),
    )
    return offsets, processed


@dataclass
class _Record:
    record: object
    event_type: str | None
    statement: dict | None = None
    error: str | None = None


class ProjectionRunner:
    def __init__(self, settings: Settings, engine: Engine, projection: Projection,
                 offsets: sa.Table, processed: sa.Table, producer_factory=None, consumer_factory=None):
        self.settings = settings
        self.engine = engine
        self.projection = projection
        self.offsets = offsets
        self.processed = processed
        self._producer_factory = producer_factory or (lambda: bus.producer(settings))
        self._consumer_factory = consumer_factory or (lambda **kw: bus.consumer(settings, **kw))
        self._dead_letter_producer = None

    # --- one batch -------------------------------------------------------------------

    def process(self, records: list) -> dict[TopicPartition, int]:
        """Apply a batch in one transaction; return the next offset per partition."""
        parsed = [self._parse(record) for record in records]
        dead: list[tuple[object, str]] = [(p.record, p.error) for p in parsed if p.error]
        next_offsets: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            next_offsets[tp] = max(next_offsets.get(tp, 0), record.offset + 1)
        with self.engine.begin() as conn:
            fresh = self._not_yet_processed(conn, [p for p in parsed if p.statement is not None])
            applied_ids = []
            # Consecutive records of one type go to their handler together (fast path);
            # order across types is kept, so a withdrawal never precedes its enrolment.
            for event_type, run in itertools.groupby(fresh, key=lambda p: p.event_type):
                run = list(run)
                handler = self.projection.handlers.get(event_type)
                if handler is None:
                    applied_ids += [p.statement["id"] for p in run]  # not ours to project
                    continue
                applied, failed = self._apply(conn, handler, run)
                applied_ids += applied
                dead += failed
            db.insert_ignoring_duplicates(
                conn, self.processed, [{"statement_id": sid} for sid in applied_ids], ["statement_id"])
            db.upsert(conn, self.offsets,
                      [{"topic": tp.topic, "partition": tp.partition, "next_offset": offset}
                       for tp, offset in next_offsets.items()], ["topic", "partition"])
            if dead:
                # Before the commit: if the dead-letter topic cannot take them, the batch
                # is retried rather than the records silently dropped.
                self._send_dead_letters(dead)
        APPLIED.labels(self.settings.service).inc(len(applied_ids))
        return next_offsets

    def _parse(self, record) -> _Record:
        event_type = events.header(record.headers, events.HEADER_EVENT_TYPE)
        try:
            return _Record(record, event_type, statement=xapi.decode(record.value))
        except xapi.InvalidStatement as exc:
            return _Record(record, event_type, error=f"unparseable statement: {exc}")

    def _not_yet_processed(self, conn: Connection, parsed: list[_Record]) -> list[_Record]:
        ids = list({p.statement["id"] for p in parsed})
        seen: set[str] = set()
        for chunk in db.chunks(ids, 500):
            seen.update(conn.scalars(
                sa.select(self.processed.c.statement_id).where(self.processed.c.statement_id.in_(chunk))))
        fresh = []
        for p in parsed:
            sid = p.statement["id"]
            if sid in seen:
                DUPLICATES.labels(self.settings.service).inc()
                continue
            seen.add(sid)
            fresh.append(p)
        return fresh

    def _apply(self, conn: Connection, handler: Handler, run: list[_Record]):
        try:
            with conn.begin_nested():
                handler(conn, [p.statement for p in run])
            return [p.statement["id"] for p in run], []
        except Exception:
            log.info("batch handler failed; retrying its records one by one", exc_info=True)
        applied, failed = [], []
        for p in run:  # slow path: one savepoint per record finds the poison one(s)
            try:
                with conn.begin_nested():
                    handler(conn, [p.statement])
                applied.append(p.statement["id"])
            except Exception as exc:
                log.warning("record failed; dead-lettered", extra={
                    "topic": p.record.topic, "partition": p.record.partition, "offset": p.record.offset,
                    "error": repr(exc)})
                failed.append((p.record, f"handler failed: {exc!r}"))
        return applied, failed

    def _send_dead_letters(self, dead: list[tuple[object, str]]) -> None:
        if self._dead_letter_producer is None:
            self._dead_letter_producer = self._producer_factory()
        futures = []
        for record, reason in dead:
            headers = list(record.headers or []) + [
                ("dead-letter-reason", reason.encode()[:4000]),
                ("dead-letter-topic", record.topic.encode()),
                ("dead-letter-partition", str(record.partition).encode()),
                ("dead-letter-offset", str(record.offset).encode()),
                ("dead-letter-consumer", self.settings.service.encode()),
            ]
            futures.append(self._dead_letter_producer.send(
                self.settings.dead_letter_topic, key=record.key, value=record.value, headers=headers))
        self._dead_letter_producer.flush()
        for future in futures:
            future.get()
        DEAD_LETTERS.labels(self.settings.service).inc(len(dead))

    # --- offsets -----------------------------------------------------------------------

    def stored_offsets(self) -> dict[TopicPartition, int]:
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(self.offsets)).all()
        return {TopicPartition(r.topic, r.partition): r.next_offset for r in rows}

    def _seek_to_stored(self, consumer, partitions: Iterable[TopicPartition]) -> None:
        stored = self.stored_offsets()
        for tp in partitions:
            if tp in stored:
                consumer.seek(tp, stored[tp])
            else:
                consumer.seek_to_beginning(tp)

    # --- the live loop -----------------------------------------------------------------

    def _wait_for_partitions(self, consumer, stop: threading.Event, timeout: float = 60.0) -> None:
        """Subscribe only once the client knows every topic's partitions: a member that
        joins while a just-created topic has no metadata yet is assigned none of it, and
        would read nothing of that topic until its next metadata refresh."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            missing = [t for t in self.projection.topics if not consumer.partitions_for_topic(t)]
            if not missing:
                return
            log.info("waiting for partition metadata", extra={"topics": missing})
            stop.wait(0.2)

    def run(self, stop: threading.Event) -> None:
        consumer = self._consumer_factory(group_id=self.settings.consumer_group)
        runner = self

        class SeekToStoredOffsets(ConsumerRebalanceListener):
            # The database, not Kafka, is the authority on what has been applied.
            def on_partitions_revoked(self, revoked):
                pass

            def on_partitions_assigned(self, assigned):
                runner._seek_to_stored(consumer, assigned)

        self._wait_for_partitions(consumer, stop)
        consumer.subscribe(self.projection.topics, listener=SeekToStoredOffsets())
        last_records = time.monotonic()
        try:
            while not stop.is_set():
                polled = consumer.poll(timeout_ms=200)
                records = [r for batch in polled.values() for r in batch]
                if not records:
                    if time.monotonic() - last_records > STALL_CHECK_S:
                        if self._stalled(consumer):
                            log.warning("consumer stalled with records waiting; reconnecting")
                            return  # the worker starts a fresh consumer
                        last_records = time.monotonic()
                    continue
                last_records = time.monotonic()
                try:
                    offsets = self.process(records)
                except Exception:
                    log.exception("batch failed; rewinding to the stored offsets")
                    self._seek_to_stored(consumer, consumer.assignment())
                    stop.wait(1.0)
                    continue
                try:
                    consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
                except Exception:  # harmless: the database holds the true offsets
                    log.warning("kafka offset commit failed", exc_info=True)
        finally:
            consumer.close(autocommit=False)
            if self._dead_letter_producer is not None:
                self._dead_letter_producer.close()

    def _stalled(self, consumer) -> bool:
        """Records are waiting on our partitions (or we hold none at all), yet polls bring
        nothing. Seen with kafka-python 3 when a group member is evicted under load and
        its rejoin hangs; a fresh consumer recovers, and the stored offsets make that safe."""
        assignment = consumer.assignment()
        if not assignment:
            return True
        try:
            ends = consumer.end_offsets(list(assignment))
        except Exception:  # the broker is away: nothing a new consumer would do better
            return False
        stored = self.stored_offsets()
        return any(end > stored.get(tp, 0) for tp, end in ends.items())

    # --- rebuild -------------------------------------------------------------------------

    def rebuild(self, progress: bool = True) -> int:
        """Drop the read models and replay every topic from offset zero.

        Run it with the service's worker stopped; the worker resumes from where the
        rebuild ended. Returns the number of records read."""
        with self.engine.begin() as conn:
            for table in reversed(self.projection.tables):
                conn.execute(table.delete())
            conn.execute(self.processed.delete())
            conn.execute(self.offsets.delete())
        consumer = self._consumer_factory(group_id=None)
        try:
            partitions = [TopicPartition(topic, p) for topic in self.projection.topics
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            start = consumer.beginning_offsets(partitions)
            end = consumer.end_offsets(partitions)
            remaining = {tp for tp in partitions if end[tp] > start[tp]}
            total = sum(end[tp] - start[tp] for tp in partitions)
            read = 0
            with tqdm(total=total, unit="stmt", desc=f"rebuild {self.settings.service}",
                      disable=not progress) as bar:
                while remaining:
                    polled = consumer.poll(timeout_ms=500)
                    # Records written after the rebuild began are left for the worker.
                    records = [r for tp, batch in polled.items() for r in batch if r.offset < end[tp]]
                    if records:
                        self.process(records)
                        read += len(records)
                        bar.update(len(records))
                    remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
            return read
        finally:
            consumer.close(autocommit=False)

