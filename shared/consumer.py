"""Projections: consume topics into read models (docs/architecture.md, Reading).

A consumed batch, the read-model changes it causes, the statement ids it processed and
the next offsets all commit in one database transaction; Kafka's committed offsets
follow only after that (they are advisory), and on assignment the consumer starts each
partition at the offset stored in the database. So a crash anywhere neither loses nor
double-counts a fact, and a statement published twice by the relay is applied once.

The dead-letter policy (shared.errors): a record that raises `Unprocessable` (it cannot
be parsed, breaks the event contract, or names what can never exist) goes to the
service's dead-letter topic with the reason, and consumption goes on; more than
CONSUMER_DEAD_LETTER_LIMIT of them in a row stop the projection (`ProjectionStopped`)
rather than drain the topic. Any other error is taken as passing: the batch rolls back,
the consumer goes back to the stored offsets and tries again with capped exponential
backoff, the process stays up, and the metrics and logs say why.
"""
from __future__ import annotations

import functools
import gc
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from shared import bus, db, events, logs, xapi
from shared.bus import Record, TopicPartition
from shared.config import Settings
from shared.errors import Unprocessable

log = logging.getLogger(__name__)

Handler = Callable[[Connection, list[dict]], None]
Offsets = dict[tuple[str, int], int]

APPLIED = Counter("learnstream_projection_applied_total", "Statements applied to read models", ["service"])
DUPLICATES = Counter("learnstream_projection_duplicates_total", "Redelivered statements skipped", ["service"])
DEAD_LETTERS = Counter("learnstream_projection_dead_letters_total", "Records sent to the dead-letter topic",
                       ["service"])
RETRIES = Counter("learnstream_projection_retries_total", "Batches rolled back by a passing error and retried",
                  ["service"])
RETRYING = Gauge("learnstream_projection_retrying", "1 while the projection backs off after a passing error",
                 ["service"], multiprocess_mode="livemax")
STOPPED = Gauge("learnstream_projection_stopped", "1 once too many dead letters in a row stopped the projection",
                ["service"], multiprocess_mode="livemax")

# Dead-letter headers: where the record came from and why it is here. A replay appends a
# record with no value and HEADER_RESOLVES naming the dead letter it settles.
HEADER_REASON = "dead-letter-reason"
HEADER_TOPIC = "dead-letter-topic"
HEADER_PARTITION = "dead-letter-partition"
HEADER_OFFSET = "dead-letter-offset"
HEADER_CONSUMER = "dead-letter-consumer"
HEADER_RESOLVES = "dead-letter-resolves"
HEADER_OUTCOME = "dead-letter-outcome"

REPLAY_OPTION = "learnstream_replay"


def replay_engine(engine: Engine) -> Engine:
    """The same engine, its transactions marked as replaying (see `replaying`)."""
    return engine.execution_options(**{REPLAY_OPTION: True})


def replaying(conn: Connection) -> bool:
    """True while a rebuild replays the topics: a handler that writes the outbox (issues
    certificates) must then stage nothing, since the live run already published it."""
    return bool(conn.get_execution_options().get(REPLAY_OPTION))


@dataclass(frozen=True)
class Projection:
    """What a service's worker consumes: which topics, which handler per event type,
    and which read-model tables it owns (cleared and refilled by a rebuild)."""

    topics: list[str]
    handlers: Mapping[str, Handler]
    tables: list[sa.Table] = field(default_factory=list)
    # Run at the end of a rebuild, in a replaying transaction: for a read model its
    # handlers leave to be derived once from everything replayed (see replaying()).
    # Called as after_replay(conn, part, parts): a rebuild with several jobs runs one
    # part in each process, side by side, so a part must touch only its own rows and
    # the parts together everything; one job calls it once, with part 0 of 1.
    after_replay: Callable[[Connection, int, int], None] | None = None


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


@dataclass(frozen=True)
class Batch:
    """What `process` made of a batch: the next offset per partition, and the records
    applied (or already applied before) and dead-lettered."""

    next_offsets: Offsets
    applied: list[Record]
    dead: list[Record]


class ProjectionStopped(Exception):
    """Too many dead letters in a row: the projection stops rather than drain its topics."""


@dataclass
class _Parsed:
    record: Record
    event_type: str | None = None
    statement: dict | None = None
    error: str | None = None


def parse(record: Record) -> _Parsed:
    """A pure function of the record's bytes, so any error in it is the record's own and
    retrying cannot help: every one is unprocessable (headers, key or value)."""
    try:
        source, event_type = events.routing(record.headers)
        if source is None:
            # Every producer names itself (shared.events.headers); a record without it did
            # not come through the event contract. (No event type is allowed: the LRS
            # topic's oldest records are LMS statements without one.)
            raise Unprocessable("record has no source header (ce_source, or source before CloudEvents)")
        if record.key is None:
            raise Unprocessable("record has no key")
        record.key.decode()
        if record.value is None:
            raise Unprocessable("record has no value")
        return _Parsed(record, event_type, statement=xapi.decode(record.value))
    except Unprocessable as exc:
        return _Parsed(record, error=f"unparseable: {exc}")
    except Exception as exc:  # noqa: BLE001 - see the docstring
        return _Parsed(record, error=f"unparseable: {type(exc).__name__}: {exc}")


class _Backoff:
    def __init__(self, cap: float, first: float = 0.1):
        self.first, self.cap, self.next = first, cap, first

    def wait(self, stop: threading.Event) -> float:
        delay, self.next = self.next, min(self.next * 2, self.cap)
        stop.wait(delay)
        return delay

    def reset(self) -> None:
        self.next = self.first


class ProjectionRunner:
    def __init__(self, settings: Settings, engine: Engine, projection: Projection,
                 offsets: sa.Table, processed: sa.Table, publisher_factory=None, consumer_factory=None):
        self.settings = settings
        self.engine = engine
        self.projection = projection
        self.offsets = offsets
        self.processed = processed
        self._publisher_factory = publisher_factory or (lambda: bus.Publisher(settings, role="dead-letters"))
        self._consumer_factory = consumer_factory or (lambda **kw: bus.consumer(settings, **kw))
        self._publisher = None
        self.dead_in_a_row = 0
        self.last_rebuild_rate = 0.0  # records per second
        self.last_rebuild_seconds: dict[str, float] = {}  # by phase: clear, replay, after_replay

    # --- one batch -------------------------------------------------------------------

    def process(self, records: list[Record], *, engine: Engine | None = None,
                store_offsets: bool = True, breaker: bool = True) -> Batch:
        """Apply a batch in one transaction; return what became of it.

        Raises ProjectionStopped (nothing committed) when the batch takes the dead letters
        in a row past the limit, and lets any passing error through (nothing committed)."""
        parsed = [parse(record) for record in records]
        next_offsets: Offsets = {}
        for record in records:
            key = (record.topic, record.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), record.offset + 1)
        with (engine or self.engine).begin() as conn:
            fresh = self._claim(conn, [p for p in parsed if p.statement is not None])
            # Consecutive records with one handler go to it together (fast path: the
            # final test's started, scored and passed of a learner are one call, not
            # three); order across handlers is kept, so a withdrawal never precedes its
            # enrolment.
            handlers = self.projection.handlers
            for handler, run in itertools.groupby(fresh, key=lambda p: handlers.get(p.event_type)):
                if handler is not None:  # else: not ours to project
                    self._apply(conn, handler, list(run))
            dead = [p for p in parsed if p.error]
            in_a_row = self._count_in_a_row(parsed)
            if breaker and in_a_row > self.settings.consumer_dead_letter_limit:
                raise ProjectionStopped(
                    f"{in_a_row} records in a row were unprocessable (limit CONSUMER_DEAD_LETTER_LIMIT="
                    f"{self.settings.consumer_dead_letter_limit}); the last: {dead[-1].error}. "
                    "Fix the cause and restart the worker: it resumes before the first of this batch.")
            if dead:
                ids = [p.statement["id"] for p in dead if p.statement is not None]
                for chunk in db.chunks(ids):  # a dead letter stays replayable (shared.dead_letters)
                    conn.execute(self.processed.delete().where(self.processed.c.statement_id.in_(chunk)))
            if store_offsets:
                db.upsert(conn, self.offsets,
                          [{"topic": topic, "partition": partition, "next_offset": offset}
                           for (topic, partition), offset in next_offsets.items()], ["topic", "partition"])
            if dead:
                # Before the commit: if the dead-letter topic cannot take them, the batch
                # is retried rather than the records silently dropped.
                self.send_dead_letters([(p.record, p.error) for p in dead])
        self.dead_in_a_row = in_a_row if breaker else 0
        applied = [p.record for p in fresh if not p.error]
        APPLIED.labels(self.settings.service).inc(len(applied))
        return Batch(next_offsets, applied, [p.record for p in dead])

    def _claim(self, conn: Connection, parsed: list[_Parsed]) -> list[_Parsed]:
        """Insert the batch's statement ids into processed_statements and keep the records
        whose id was really inserted. The insert, not a read before it, decides: two
        consumers that briefly hold one partition across a rebalance block on the same
        key, and the second finds it taken, so a fact is applied once."""
        first: dict[str, _Parsed] = {}
        for p in parsed:
            first.setdefault(p.statement["id"], p)
        claimed: set[str] = set()
        ids = list(first)
        for chunk in db.chunks(ids, 500):
            claimed.update(db.insert_returning_new(conn, self.processed, "statement_id", chunk))
        DUPLICATES.labels(self.settings.service).inc(len(parsed) - len(claimed))
        return [p for p in parsed if p.statement["id"] in claimed and first[p.statement["id"]] is p]

    def _apply(self, conn: Connection, handler: Handler, run: list[_Parsed]) -> None:
        try:
            with conn.begin_nested():
                handler(conn, [p.statement for p in run])
            return
        except Unprocessable:
            log.info("batch handler found an unprocessable record; applying its records one by one")
        # Any other error propagates: the whole batch rolls back and is retried.
        for p in run:  # slow path: one savepoint per record finds the unprocessable one(s)
            try:
                with conn.begin_nested():
                    handler(conn, [p.statement])
            except Unprocessable as exc:
                p.error = f"unprocessable: {exc}"

    def _count_in_a_row(self, parsed: list[_Parsed]) -> int:
        """Dead letters in a row at the end of this batch (in the order consumed),
        counting those that ended the batches before."""
        in_a_row = self.dead_in_a_row
        for p in parsed:
            in_a_row = in_a_row + 1 if p.error else 0
        return in_a_row

    def publisher(self) -> bus.Publisher:
        if self._publisher is None:
            self._publisher = self._publisher_factory()
        return self._publisher

    def send_dead_letters(self, dead: list[tuple[Record, str]]) -> None:
        self.publisher().publish(
            (self.settings.dead_letter_topic, record.key, record.value, list(record.headers) + [
                (HEADER_REASON, reason.encode()[:4000]),
                (HEADER_TOPIC, record.topic.encode()),
                (HEADER_PARTITION, str(record.partition).encode()),
                (HEADER_OFFSET, str(record.offset).encode()),
                (HEADER_CONSUMER, self.settings.service.encode()),
            ]) for record, reason in dead)
        DEAD_LETTERS.labels(self.settings.service).inc(len(dead))
        for record, reason in dead:
            log.warning("record dead-lettered", extra={
                "topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": reason})

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    # --- offsets -----------------------------------------------------------------------

    def stored_offsets(self) -> Offsets:
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(self.offsets)).all()
        return {(r.topic, r.partition): r.next_offset for r in rows}

    def _starting_points(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        stored = self.stored_offsets()
        return [TopicPartition(tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING))
                for tp in partitions]

    # --- the live loop -----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop`; raises ProjectionStopped when the breaker trips."""
        consumer = self._consumer_factory(group_id=self.settings.consumer_group)
        backoff = _Backoff(self.settings.consumer_retry_max_seconds)
        service = self.settings.service

        def on_assign(client, partitions):
            # The database, not Kafka, is the authority on what has been applied. Rebalance
            # callbacks run inside consume(), between batches, never in the middle of one.
            while True:
                try:
                    client.assign(self._starting_points(partitions))  # eager (range): the whole assignment
                    return
                except Exception as exc:  # the database is away: wait, the partitions wait too
                    log.warning("reading stored offsets failed; will retry", extra={"error": logs.described(exc)})
                    if stop.is_set():
                        raise
                    backoff.wait(stop)

        consumer.subscribe(self.projection.topics, on_assign=on_assign)
        try:
            while not stop.is_set():
                records = bus.records(consumer.consume(self.settings.consumer_max_records, timeout=0.2))
                if not records:
                    continue
                try:
                    offsets = self.process(records).next_offsets
                except ProjectionStopped:
                    STOPPED.labels(service).set(1)
                    raise
                except Exception as exc:
                    self._retrying(exc, backoff, "batch failed; rolled back, will retry from the stored offsets")
                    self._rewind(consumer, stop, backoff)
                    continue
                backoff.reset()
                RETRYING.labels(service).set(0)
                try:
                    consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                    asynchronous=True)
                except Exception:  # harmless: the database holds the true offsets
                    log.debug("kafka offset commit failed", exc_info=True)
        finally:
            consumer.close()
            self.close()

    def _retrying(self, exc: Exception, backoff: _Backoff, message: str, **extra) -> None:
        """What a passing error does, live or in a rebuild: counted, shown on the
        metrics, logged without the SQL's parameters; the caller then backs off."""
        RETRIES.labels(self.settings.service).inc()
        RETRYING.labels(self.settings.service).set(1)
        log.warning(message, extra={"error": logs.described(exc), "retry_in_s": backoff.next, **extra},
                    exc_info=logs.traceback_is_safe(exc))

    def _rewind(self, consumer, stop: threading.Event, backoff: _Backoff) -> None:
        """Back to the stored offsets on every partition held, after a backoff; reading
        them may fail as the batch did, so this waits and tries again until it works."""
        while not stop.is_set():
            backoff.wait(stop)
            try:
                for tp in self._starting_points(consumer.assignment()):
                    consumer.seek(tp)
                return
            except Exception as exc:
                log.warning("rewinding to the stored offsets failed; will retry", extra={"error": logs.described(exc)})

    # --- rebuild -------------------------------------------------------------------------

    def rebuild(self, progress: bool = True, jobs: int = 1) -> int:
        """Drop the read models and replay every topic from offset zero.

        Run it with the service's worker stopped; the worker resumes from where the
        rebuild ended. Handlers see `replaying(conn)`: what they would publish, the live
        run published already. Returns the number of records read.

        With `jobs` > 1 the partitions are shared among that many processes by partition
        number: partition p of every topic goes to one process, as the range assignor
        gives it to one worker (shared.bus.consumer), so each learner's facts are applied
        by one process, in the order of the log. Then `after_replay` runs in as many
        processes, one part each (see Projection)."""
        clearing = time.monotonic()
        with self.engine.begin() as conn:
            for table in reversed(self.projection.tables):
                conn.execute(table.delete())
            conn.execute(self.processed.delete())
            conn.execute(self.offsets.delete())
        consumer = self._consumer_factory(group_id=None)
        try:
            tps = [tp for topic in self.projection.topics for tp in bus.partitions(consumer, topic)]
            marks = bus.end_offsets(consumer, tps)
        finally:
            consumer.close()
        # Records written after the rebuild began are left for the worker.
        end = {key: high for key, (_, high) in marks.items()}
        shares = rebuild_shares(marks, jobs)
        total = sum(high - low for low, high in marks.values())
        replaying_engine = replay_engine(self.engine)
        # What is loaded now lives as long as the rebuild: spare the collector rescanning
        # it while every batch allocates tens of thousands of short-lived dicts (measured:
        # about 7% of a rebuild's CPU; docs/performance.md).
        gc.freeze()
        started = time.monotonic()
        phases = self.last_rebuild_seconds = {"clear": started - clearing}
        try:
            with tqdm(total=total, unit="stmt", unit_scale=True, desc=f"rebuild {self.settings.service}",
                      disable=not progress) as bar:
                if len(shares) > 1:
                    read = self._in_processes([functools.partial(self._replay, share, end) for share in shares],
                                              bar.update)
                else:
                    read = self._replay(shares[0] if shares else [], end, replaying_engine, bar.update)
            phases["replay"] = time.monotonic() - started
            if self.projection.after_replay is not None:
                parts = max(len(shares), 1)
                if parts > 1:
                    self._in_processes([functools.partial(self._after_replay, part, parts) for part in range(parts)])
                else:
                    self._after_replay(0, 1, replaying_engine)
            phases["after_replay"] = time.monotonic() - started - phases["replay"]
            self.last_rebuild_rate = read / max(time.monotonic() - started, 1e-9)
            return read
        finally:
            gc.unfreeze()
            self.close()

    def _replay(self, share: list[TopicPartition], end: Offsets, engine: Engine,
                advance: Callable[[int], object]) -> int:
        """Apply these partitions from their low watermark to `end`; return the records read."""
        consumer = self._consumer_factory(group_id=None)
        read = 0
        try:
            consumer.assign(share)
            remaining = {(tp.topic, tp.partition) for tp in share}
            while remaining:
                # Larger batches than live: no one waits for a batch's freshness, and each
                # transaction costs a commit and the handlers' per-call work.
                records = [Record.of(m) for m in consumer.consume(self.settings.consumer_rebuild_records, timeout=0.5)
                           if m.error() is None and m.offset() < end[(m.topic(), m.partition())]]
                if records:
                    self._process_replaying(records, engine)
                    read += len(records)
                    advance(len(records))
                remaining = {(tp.topic, tp.partition) for tp in consumer.position(
                    [TopicPartition(t, p) for t, p in remaining]) if tp.offset < end[(tp.topic, tp.partition)]}
            return read
        finally:
            consumer.close()

    def _after_replay(self, part: int, parts: int, engine: Engine,
                      advance: Callable[[int], object] | None = None) -> int:
        """One part of `after_replay`, in one transaction (`advance`: nothing to count)."""
        with engine.begin() as conn:
            self.projection.after_replay(conn, part, parts)
        return 0

    def _process_replaying(self, records: list[Record], engine: Engine) -> Batch:
        """`process`, retrying a passing error a few times (the batch is in memory, so
        nothing to seek): processes rebuilding side by side may still meet on PostgreSQL
        over a row both insert first (a new cohort; db.upsert_changed spares the rows
        already stored). A rebuild is watched by an operator, so it fails rather than
        retries for ever."""
        backoff = _Backoff(self.settings.consumer_retry_max_seconds)
        for attempt in range(1, REBUILD_ATTEMPTS):
            try:
                return self.process(records, engine=engine)
            except ProjectionStopped:
                raise
            except Exception as exc:
                self._retrying(exc, backoff, "rebuild batch failed; rolled back, will retry", attempt=attempt)
                backoff.wait(threading.Event())
        return self.process(records, engine=engine)  # the last try: its error ends the rebuild

    def _in_processes(self, tasks: list[Callable[[Engine, Callable[[int], object]], int]],
                      advance: Callable[[int], object] = lambda n: None) -> int:
        """Run each task in a forked process of its own, with a replaying engine and a
        counter that `advance` follows (the bar); return the sum of the counts. Forked,
        not spawned: the projection's handlers need not be importable by name, and
        nothing holding a thread of its own (a Kafka client) is alive here when the
        processes start. A failed process fails the whole with RebuildFailed."""
        context = multiprocessing.get_context("fork")
        counts = [context.RawValue("q", 0) for _ in tasks]
        failures = context.SimpleQueue()
        self.close()  # no producer's thread may be copied into the processes
        self.engine.dispose()  # each process opens its own connections
        processes = [context.Process(target=self._run_task, args=(task, count, failures),
                                     name=f"rebuild-{self.settings.service}-{n}", daemon=True)
                     for n, (task, count) in enumerate(zip(tasks, counts, strict=True))]
        for process in processes:
            process.start()
        shown = 0

        def follow() -> None:
            nonlocal shown
            done = sum(count.value for count in counts)
            advance(done - shown)
            shown = done
        try:
            while alive := [process.sentinel for process in processes if process.is_alive()]:
                multiprocessing.connection.wait(alive, timeout=0.2)
                follow()
        finally:
            for process in processes:
                if process.is_alive():  # the parent was interrupted: take the others down too
                    process.terminate()
                process.join()
        follow()
        reasons = []
        while not failures.empty():
            reasons.append(failures.get())
        failed = [p for p in processes if p.exitcode != 0]
        if failed or reasons:
            raise RebuildFailed(
                f"{len(failed)} of {len(processes)} rebuild processes failed: "
                + ("; ".join(reasons) or ", ".join(f"{p.name} exit code {p.exitcode}" for p in failed))
                + ". The read models are incomplete: fix the cause and rebuild again.")
        return shown

    def _run_task(self, task, count, failures) -> None:
        """A rebuild process's work (see _in_processes)."""
        self.engine.dispose(close=False)  # never the parent's connections; the heap came frozen

        def advance(n: int) -> None:
            count.value += n
        try:
            task(replay_engine(self.engine), advance)
        except BaseException as exc:
            failures.put(logs.described(exc))
            raise SystemExit(1) from None
        finally:
            self.close()  # flush what it dead-lettered
            self.engine.dispose()


REBUILD_ATTEMPTS = 5


class RebuildFailed(Exception):
    """A process of a rebuild with several jobs failed; the message names its error."""


def rebuild_shares(marks: Mapping[tuple[str, int], tuple[int, int]], jobs: int) -> list[list[TopicPartition]]:
    """The partitions with records, from their low watermark, in at most `jobs` shares of
    about equal size: whole partition numbers (partition p of every topic together),
    largest first to the least loaded share."""
    sizes: dict[int, int] = {}
    for (_, partition), (low, high) in marks.items():
        if high > low:
            sizes[partition] = sizes.get(partition, 0) + high - low
    shares: list[list] = [[0, []] for _ in range(max(1, min(jobs, len(sizes))))]  # [records, partitions]
    for partition in sorted(sizes, key=lambda p: (-sizes[p], p)):
        share = min(shares, key=lambda share: share[0])
        share[0] += sizes[partition]
        share[1].append(partition)
    return [[TopicPartition(topic, partition, low) for (topic, partition), (low, high) in sorted(marks.items())
             if partition in numbers and high > low] for _, numbers in shares if numbers]
