"""The forwarder: every statement on the topics, sent on to each target that wants it.

One loop per target (`TargetLoop`), each with its own Kafka consumer group
(`<group>.target.<id>`) and its own offsets in this service's database, so a target
that fails is retried with capped backoff while the other targets go on. `supervise`
starts, restarts (on a change) and stops the loops as the targets table says, so
targets are configured at run time through the API.

Nothing lost, nothing doubled, order per learner kept:
- Records are keyed by learner, so a learner's statements are on one partition, in
  order; a loop sends a batch's statements in the order consumed, POST after POST.
- A target's offsets move only after the statements before them were delivered (or
  quarantined), in one transaction with the quarantine rows and the status.
- A crash between a target's 200 and that commit sends those statements again: xAPI
  statement ids make that harmless (the target accepts a statement it holds unchanged,
  or answers 409, which counts as delivered).
- A batch the target refuses (400 ...) is split in halves until the statements at fault
  are found; only those are quarantined, with the target's answer (domain.verdict).
- Anything else (no answer, 5xx, 429, 401 ...) rolls back to the stored offsets and the
  same statements are tried again after a backoff capped at CONSUMER_RETRY_MAX_SECONDS.
"""
from __future__ import annotations

import base64
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Engine

from services.forwarding import projections, repository
from services.forwarding import tables as t
from services.forwarding.domain import Backoff, Breaker, Target, Verdict, halves, outgoing, verdict
from shared import bus, db, logs, xapi
from shared.bus import Record
from shared.config import Settings
from shared.consumer import ProjectionRunner, parse

log = logging.getLogger(__name__)

# Summed over processes: worker replicas hold different partitions of one target.
LAG = Gauge("learnstream_forwarding_lag", "Records on the topics not yet delivered to the target",
            ["target"], multiprocess_mode="livesum")
RETRYING = Gauge("learnstream_forwarding_retrying", "1 while the target fails and is retried with backoff",
                 ["target"], multiprocess_mode="livemax")
STOPPED = Gauge("learnstream_forwarding_stopped", "1 once too many refusals in a row stopped the target",
                ["target"], multiprocess_mode="livemax")
DELIVERED = Counter("learnstream_forwarding_delivered_total", "Statements delivered to the target", ["target"])
QUARANTINED = Counter("learnstream_forwarding_quarantined_total", "Statements the target refused for good",
                      ["target"])
RETRIES = Counter("learnstream_forwarding_retries_total", "Failed tries of the target, retried after a backoff",
                  ["target"])

# Every topic with statements on it (docs/events.md); a target's filter picks among them.
PRODUCERS = ("enrollment", "lrs", "assessment", "certification")
RESPONSE_KEPT = 2000  # characters of a target's answer kept in the quarantine and the status
SUPERVISE_SECONDS = 2.0
LAG_EVERY_SECONDS = 1.0


class TargetUnavailable(Exception):
    """The target did not take the statements for a passing reason: try again later."""


class TargetStopped(Exception):
    """Too many statements refused in a row (domain.Breaker)."""


class _Stopping(Exception):
    """The worker stops before a batch could be judged: nothing of it is committed."""


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (refused, reset, timed out)
    body: str


def post_statements(target: Target, statements: list[dict]) -> Answer:
    """POST statements to the target's /statements. What goes wrong is said without the
    credentials: they are only in the Authorization header, never in the URL or a message."""
    token = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
    request = urllib.request.Request(target.statements_url, data=orjson.dumps(statements), method="POST", headers={
        "Content-Type": "application/json", "X-Experience-API-Version": target.xapi_version,
        "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=target.timeout_seconds) as response:
            return Answer(response.status, response.read(RESPONSE_KEPT).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        body = exc.read(RESPONSE_KEPT).decode(errors="replace") if exc.fp else ""
        return Answer(exc.code, body)
    except (OSError, urllib.error.URLError) as exc:  # refused, reset, timed out, DNS
        return Answer(None, f"no answer: {type(exc).__name__}: {getattr(exc, 'reason', exc)}")


@dataclass
class _Item:
    record: Record
    event_type: str | None
    statement: dict


class TargetLoop:
    def __init__(self, settings: Settings, engine: Engine, target: Target, *, post=post_statements,
                 consumer_factory=None, catalog: ProjectionRunner | None = None):
        self.settings, self.engine, self.target, self.post = settings, engine, target, post
        self._consumer_factory = consumer_factory or (lambda **kw: bus.consumer(settings, **kw))
        self.catalog = catalog
        self.backoff = Backoff(cap=settings.consumer_retry_max_seconds)
        self.breaker = Breaker(limit=settings.consumer_dead_letter_limit)
        self.offsets: dict[tuple[str, int], int] = {}  # the stored ones, for the lag
        self.label = target.name

    @property
    def topics(self) -> list[str]:
        return [self.settings.topic(producer) for producer in PRODUCERS]

    @property
    def group(self) -> str:
        return f"{self.settings.consumer_group}.target.{self.target.id}"

    # --- offsets ----------------------------------------------------------------------------

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        o = t.target_offsets
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(o).where(o.c.target_id == self.target.id)).all()
        return {(r.topic, r.partition): r.next_offset for r in rows}

    def _starting_points(self, partitions) -> list[TopicPartition]:
        stored = self.stored_offsets()
        self.offsets.update({k: v for k, v in stored.items()})
        return [TopicPartition(tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING))
                for tp in partitions]

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        consumer = self._consumer_factory(group_id=self.group)

        def on_assign(client, partitions):
            while True:  # the database is the authority on what was delivered
                try:
                    # eager (range, as every consumer: shared.bus): the whole assignment
                    client.assign(self._starting_points(partitions))
                    return
                except Exception as exc:
                    log.warning("reading a target's offsets failed; will retry",
                                extra={"target": self.label, "error": logs.described(exc)})
                    if stop.wait(1.0):
                        raise

        consumer.subscribe(self.topics, on_assign=on_assign)
        last_lag = 0.0
        try:
            while not stop.is_set():
                self._replay_requested(stop)
                records = bus.records(consumer.consume(self.settings.consumer_max_records, timeout=0.2))
                try:
                    if records:
                        self.forward(records, stop)
                except _Stopping:
                    return  # the records are polled again from the stored offsets next time
                except TargetUnavailable as exc:
                    self._failed(str(exc))
                    self._report_lag(consumer)  # while it fails is when the lag matters
                    self._rewind(consumer, stop)
                    continue
                if records and self.backoff.failures:  # delivered: not an empty poll after a rewind
                    self.backoff.reset()
                    RETRYING.labels(self.label).set(0)
                if records or time.monotonic() - last_lag > LAG_EVERY_SECONDS:
                    self._report_lag(consumer)
                    last_lag = time.monotonic()
        finally:
            consumer.close()
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _rewind(self, consumer, stop: threading.Event) -> None:
        stop.wait(self.backoff.next_delay())
        while not stop.is_set():
            try:
                for tp in self._starting_points(consumer.assignment()):
                    consumer.seek(tp)
                return
            except Exception as exc:  # the database away too: wait and try again
                log.warning("rewinding a target failed; will retry",
                            extra={"target": self.label, "error": logs.described(exc)})
                stop.wait(self.backoff.next_delay())

    def _failed(self, error: str) -> None:
        RETRIES.labels(self.label).inc()
        RETRYING.labels(self.label).set(1)
        log.warning("target failed; will retry from its stored offsets", extra={"target": self.label, "error": error})
        try:
            with self.engine.begin() as conn:
                repository.write_status(conn, self.target.id, retrying=True, last_error=error[:2000])
        except Exception:  # the status is for operators; the retry does not depend on it
            log.debug("could not write the target's status", exc_info=True)

    # --- one batch --------------------------------------------------------------------------

    def forward(self, records: list[Record], stop: threading.Event) -> None:
        """Send what the target wants of these records, in order, and move its offsets.
        Raises TargetUnavailable with nothing of the undelivered rest committed."""
        items, skipped = [], []
        for record in records:
            parsed = parse(record)
            if parsed.statement is None:
                # Not a statement (the consuming services dead-letter such records): there
                # is nothing to forward; say so and go on.
                skipped.append(record)
                log.warning("record skipped: not a statement", extra={
                    "target": self.label, "topic": record.topic, "partition": record.partition,
                    "offset": record.offset, "reason": parsed.error})
            else:
                items.append(_Item(record, parsed.event_type, parsed.statement))
        found = self._facts(items, stop)
        wanted = [i for i, f in zip(items, found, strict=True) if self.target.filter.matches(f)]
        # Segments of at most batch_size wanted statements; each is committed once sent,
        # with the offsets of every record up to its end (the unwanted ones included).
        position = {id(i): n for n, i in enumerate(items)}
        segments = [wanted[start:start + self.target.batch_size]
                    for start in range(0, len(wanted), self.target.batch_size)]
        done_upto = 0
        for segment in segments:
            refused = self._send(segment)
            refused_ids = {id(item) for item, _ in refused}
            if self.breaker.count(id(i) in refused_ids for i in segment):
                self._stop_target(refused)
            end = position[id(segment[-1])] + 1
            self._commit([i.record for i in items[done_upto:end]], refused, delivered=len(segment) - len(refused))
            done_upto = end
        self._commit([i.record for i in items[done_upto:]] + skipped, [], delivered=0)

    def _facts(self, items: list[_Item], stop: threading.Event) -> list:
        """What the filter decides each item by. By cohort or agency, once the catalog has
        read every enrolment on the bus; and a statement of no enrolment known yet that
        was stored less than FORWARDING_ENROLMENT_WAIT_SECONDS ago is judged only once that
        long has passed since, the catalog read again: its enrolment may have been
        committed before it and still be in enrollment's outbox (the relays of two
        services publish independently), and judged now, it would never be sent."""
        pairs = [(i.event_type, i.statement) for i in items]
        if not self.target.filter.needs_catalog:
            return projections.facts(None, pairs)
        judged_from: dict[int, float | None] = {}  # once per item: a wait ends
        while True:
            self._wait_for_catalog(stop)
            if stop.is_set():  # the catalog not waited for: judged now, a batch could skip what it should send
                raise _Stopping()
            with db.reading(self.engine) as conn:
                found = projections.facts(conn, pairs)
            now, waits = time.time(), []
            for item, facts in zip(items, found, strict=True):
                if not facts.cohorts:
                    if id(item) not in judged_from:
                        judged_from[id(item)] = self._judged_from(item.statement, now)
                    if (until := judged_from[id(item)]) is not None and until > now:
                        waits.append(until)
            if not waits:
                return found
            log.info("waiting for the enrolment of a statement of no known cohort",
                     extra={"target": self.label, "statements": len(waits)})
            stop.wait(max(waits) - now)

    def _judged_from(self, statement: dict, now: float) -> float | None:
        """When a statement of no known enrolment may be judged (epoch seconds)."""
        try:
            stored = xapi.parse_timestamp(statement["stored"]).timestamp()
        except (KeyError, ValueError):
            return None  # no time to wait from: judged as it is
        # A `stored` ahead of this clock waits no longer than one stored just now.
        return min(stored, now) + self.settings.forwarding_enrolment_wait_seconds

    def _send(self, items: list[_Item]) -> list[tuple[_Item, Answer]]:
        """Deliver these statements, in order; return those refused for good with the answer."""
        answer = self.post(self.target, [outgoing(i.statement) for i in items])
        outcome = verdict(answer.status, len(items))
        if outcome is Verdict.DELIVERED:
            if answer.status == 409:
                log.info("target holds this statement id already (409): counted as delivered",
                         extra={"target": self.label, "statement_id": items[0].statement["id"]})
            return []
        if outcome is Verdict.REFUSED:
            log.warning("statement refused by the target; quarantined", extra={
                "target": self.label, "statement_id": items[0].statement["id"], "status": answer.status})
            return [(items[0], answer)]
        if outcome is Verdict.SPLIT:
            first, second = halves(items)
            return self._send(first) + self._send(second)
        raise TargetUnavailable(f"HTTP {answer.status}: {answer.body[:300]}" if answer.status else answer.body[:300])

    def _commit(self, records: list[Record], refused: list[tuple[_Item, Answer]], delivered: int) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), record.offset + 1)
        if not next_offsets and not refused:
            return
        with self.engine.begin() as conn:
            repository.quarantine(conn, self.target.id, [(i.record, i.event_type, i.statement, a.status, a.body)
                                                         for i, a in refused])
            db.upsert(conn, t.target_offsets, [
                {"target_id": self.target.id, "topic": topic, "partition": partition, "next_offset": offset}
                for (topic, partition), offset in next_offsets.items()], ["target_id", "topic", "partition"])
            repository.write_status(conn, self.target.id, retrying=False, last_error=None, delivered=delivered)
        self.offsets.update(next_offsets)
        DELIVERED.labels(self.label).inc(delivered)
        if refused:
            QUARANTINED.labels(self.label).inc(len(refused))

    def _stop_target(self, refused) -> None:
        message = (f"more than {self.breaker.limit} statements in a row refused by the target (limit "
                   f"CONSUMER_DEAD_LETTER_LIMIT); the last answer: HTTP {refused[-1][1].status} "
                   f"{refused[-1][1].body[:300]}. Fix the target, then change it (PUT) to start again.")
        with self.engine.begin() as conn:
            repository.write_status(conn, self.target.id, retrying=False, last_error=message, stopped=True)
        STOPPED.labels(self.label).set(1)
        log.error("target stopped", extra={"target": self.label, "reason": message})
        raise TargetStopped(message)

    def _wait_for_catalog(self, stop: threading.Event) -> None:
        """Until the catalog projection has read the enrollment topic as far as it is now:
        every enrolment published before these records were polled is then known."""
        if self.catalog is None:
            return
        consumer = self._catalog_reader()
        topic = self.settings.topic("enrollment")
        ends = {k: high for k, (_, high) in bus.end_offsets(consumer, bus.partitions(consumer, topic)).items()}
        waited_since = time.monotonic()
        while not stop.is_set():
            stored = self.catalog.stored_offsets()
            if all(stored.get(k, 0) >= high or high == 0 for k, high in ends.items()):
                return
            if time.monotonic() - waited_since > 30:  # the catalog projection stopped or far behind
                log.warning("waiting for the catalog of enrolments to catch up before judging cohorts",
                            extra={"target": self.label})
                waited_since = time.monotonic()
            stop.wait(0.1)

    _reader = None

    def _catalog_reader(self):
        if self._reader is None:
            self._reader = bus.consumer(self.settings, group_id=None)
        return self._reader

    def _report_lag(self, consumer) -> None:
        """The partitions' ends as librdkafka last heard them with its fetches (no broker
        round trip), into the metric and the database (queries sum them with the offsets)."""
        ends, lag = {}, 0
        for tp in consumer.assignment():
            try:
                low, high = consumer.get_watermark_offsets(tp, cached=True)
            except Exception:  # not known yet: next time
                continue
            if high < 0:
                continue
            ends[(tp.topic, tp.partition)] = (low, high)
            lag += max(0, high - max(low, self.offsets.get((tp.topic, tp.partition), low)))
        LAG.labels(self.label).set(lag)
        try:
            with self.engine.begin() as conn:
                repository.write_ends(conn, self.target.id, ends)
        except Exception:  # the lag is for operators; forwarding does not depend on it
            log.debug("could not write the target's lag", exc_info=True)

    # --- replays from the quarantine ----------------------------------------------------------

    def _replay_requested(self, stop: threading.Event) -> None:
        """Statements an operator asked to replay (API): sent again, one request at a time;
        delivered ones are resolved, refused ones keep their new answer."""
        with db.reading(self.engine) as conn:
            rows = repository.replay_requested(conn, self.target.id, self.target.revision,
                                               limit=self.target.batch_size)
        if not rows:
            return
        items = [_Item(Record(r.topic, r.partition, r.offset, None, None, []), r.event_type, r.statement)
                 for r in rows]
        try:
            refused = self._send(items)
        except TargetUnavailable as exc:
            self._failed(str(exc))
            stop.wait(self.backoff.next_delay())
            return
        with self.engine.begin() as conn:
            repository.settle_replays(conn, self.target.id, [i.statement["id"] for i in items],
                                      {i.statement["id"]: a for i, a in refused})
        DELIVERED.labels(self.label).inc(len(items) - len(refused))
        log.info("quarantined statements replayed", extra={
            "target": self.label, "delivered": len(items) - len(refused), "refused_again": len(refused)})


# --- the supervisor: one loop per enabled target ----------------------------------------------------

def supervise(settings: Settings, engine: Engine, stop: threading.Event, *, post=post_statements) -> None:
    """Keep one TargetLoop running per enabled target, restarted when its revision
    changes; read the targets table every SUPERVISE_SECONDS."""
    catalog = ProjectionRunner(settings, engine, projections.projection(settings), t.consumer_offsets,
                               t.processed_statements)
    running: dict[str, tuple[int, threading.Event, threading.Thread]] = {}
    box = settings.secret_box()

    def start(target: Target) -> None:
        own_stop = threading.Event()
        loop = TargetLoop(settings, engine, target, post=post, catalog=catalog)

        def run():
            delay = 1.0
            while not own_stop.is_set() and not stop.is_set():
                try:
                    loop.run(own_stop)
                except TargetStopped:
                    return
                except Exception as exc:  # a fresh consumer after a pause, whatever it was
                    log.warning("target loop failed; starting it again", extra={
                        "target": target.name, "error": logs.described(exc)}, exc_info=logs.traceback_is_safe(exc))
                    own_stop.wait(delay)
                    delay = min(delay * 2, settings.consumer_retry_max_seconds)
        thread = threading.Thread(target=run, name=f"forward-{target.name}", daemon=True)
        running[target.id] = (target.revision, own_stop, thread)
        thread.start()
        log.info("forwarding to a target", extra={"target": target.name, "url": target.url})

    try:
        while not stop.is_set():
            try:
                with db.reading(engine) as conn:
                    wanted = {target.id: target for target in repository.targets(conn, box) if target.enabled}
            except Exception as exc:
                log.warning("reading the targets failed; will retry", extra={"error": logs.described(exc)})
                stop.wait(SUPERVISE_SECONDS)
                continue
            for target_id, (revision, own_stop, thread) in list(running.items()):
                target = wanted.get(target_id)
                if target is None or target.revision != revision:
                    own_stop.set()
                    thread.join(timeout=30)
                    del running[target_id]
            for target_id, target in wanted.items():
                if target_id not in running:
                    start(target)
            stop.wait(SUPERVISE_SECONDS)
    finally:
        for _, own_stop, _ in running.values():
            own_stop.set()
        for _, _, thread in running.values():
            thread.join(timeout=30)

