"""The outbox relay: publishes committed outbox rows to Kafka, in order, then marks them.

A crash between publishing and marking republishes those rows: consumers deduplicate by
statement id, so the bus may carry a duplicate but never loses a committed statement.
While the broker is down the relay waits and retries; writers are never affected.

Marking is a write, and on SQLite a write waits for the one write lock, which a busy
web tier keeps busy: so `run` marks on a thread of its own and goes on publishing
meanwhile (rows published but not yet marked are skipped when reading), and the time
from commit to topic does not depend on how long the lock takes to come round.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime

import sqlalchemy as sa
from confluent_kafka import KafkaException
from prometheus_client import Counter
from sqlalchemy.engine import Engine

from shared import bus, db, events, logs, xapi
from shared.config import Settings
from shared.lease import RelayLease

log = logging.getLogger(__name__)

PUBLISHED = Counter("learnstream_outbox_published_total", "Outbox rows published to Kafka", ["service"])
FAILURES = Counter("learnstream_outbox_publish_failures_total", "Failed publish attempts", ["service"])

MAX_BACKOFF_S = 5.0
# A relay that has failed to publish for this long hands its lease over and stands by as
# long again: on a host cut off from the brokers but not from the database, holding on
# would keep a healthy standby on another host from publishing anything.
HANDOVER_AFTER_S = 30.0
# Rows published but not yet marked, at most: beyond this the relay waits for the marks.
MAX_UNMARKED = 50_000


class Relay:
    def __init__(self, settings: Settings, engine: Engine, outbox: sa.Table, producer_factory=None,
                 handover_after: float = HANDOVER_AFTER_S):
        self.settings = settings
        self.handover_after = handover_after
        self.engine = engine
        self.outbox = outbox
        self._producer_factory = producer_factory or (lambda: bus.Publisher(settings))
        self._producer = None
        self._unmarked: set[int] = set()  # published, waiting for the marker thread
        self._unmarked_lock = threading.Lock()
        # (ids, when Kafka acknowledged them): published_at says when a row reached the topic.
        self._marks: queue.SimpleQueue[tuple[list[int], datetime] | None] = queue.SimpleQueue()

    def publish_batch(self) -> int:
        """Publish the oldest unpublished rows; return how many were published. The marker
        thread (`run`) marks them."""
        with self._unmarked_lock:
            skip = set(self._unmarked)
        outbox = self.outbox
        with db.reading(self.engine) as conn:
            # Ids first (the partial index of unpublished rows answers it alone), payloads
            # only for the rows chosen: while marks wait, many unpublished rows are skipped.
            ids = conn.scalars(sa.select(outbox.c.id).where(outbox.c.published_at.is_(None))
                               .order_by(outbox.c.id).limit(self.settings.relay_batch_size + len(skip))).all()
            ids = [i for i in ids if i not in skip][:self.settings.relay_batch_size]
            rows = [row for chunk in db.chunks(ids) for row in conn.execute(
                sa.select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.event_type, outbox.c.payload,
                          outbox.c.created_at)
                .where(outbox.c.id.in_(chunk)).order_by(outbox.c.id))]
        if not rows:
            return 0
        self._ensure_producer().publish(self._records(rows))
        PUBLISHED.labels(self.settings.service).inc(len(rows))
        self._mark_later([row.id for row in rows], xapi.utc_now())
        return len(rows)

    def _records(self, rows) -> list[tuple]:
        """(topic, key, value, headers) per outbox row. ce_time is when the row was
        committed: one command's rows share it, so each moment is formatted once."""
        service = self.settings.service
        times: dict[datetime, str] = {}
        records = []
        for row in rows:
            payload = bytes(row.payload)
            when = times.get(row.created_at)
            if when is None:
                when = times[row.created_at] = xapi.format_timestamp(row.created_at)
            records.append((row.topic, row.key.encode(), payload, events.headers(
                service, row.event_type, xapi.statement_id(payload), row.key, when)))
        return records

    def _mark_all(self, batches: list[tuple[list[int], datetime]]) -> None:
        with self.engine.begin() as conn:
            for ids, published_at in batches:
                for chunk in db.chunks(ids):
                    conn.execute(self.outbox.update().where(self.outbox.c.id.in_(chunk))
                                 .values(published_at=published_at))

    def _mark_later(self, ids: list[int], published_at: datetime) -> None:
        with self._unmarked_lock:
            self._unmarked.update(ids)
        self._marks.put((ids, published_at))

    def _run_marker(self) -> None:
        """Mark what the relay published, as many rows per transaction as have waited."""
        done = False
        while not done:
            waiting = [self._marks.get()]
            while True:
                try:
                    waiting.append(self._marks.get_nowait())
                except queue.Empty:
                    break
            done = None in waiting
            batches = [batch for batch in waiting if batch is not None]
            backoff = 0.1
            while batches:
                try:
                    self._mark_all(batches)
                    break
                except Exception as exc:  # the database is away: the rows stay skipped, try again
                    log.warning("marking published rows failed; will retry",
                                extra={"error": logs.described(exc), "retry_in_s": backoff},
                                exc_info=logs.traceback_is_safe(exc))
                    time.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
            with self._unmarked_lock:
                for ids, _ in batches:
                    self._unmarked.difference_update(ids)

    def _ensure_producer(self):
        if self._producer is None:
            self._producer = self._producer_factory()
        return self._producer

    def _reset_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close()
            except Exception:  # closing a producer to a dead broker may itself fail
                log.debug("error closing producer", exc_info=True)
        self._producer = None

    def _hand_over(self, lease: RelayLease, stop: threading.Event) -> None:
        """Let the lease go and stand by, so that a relay that can reach the brokers takes
        it. What this one published and has not marked yet, the next one publishes again:
        a duplicate on the bus, which consumers drop by statement id; never a gap."""
        log.warning("cannot publish; handing this outbox over to another relay",
                    extra={"failing_for_s": self.handover_after, "stand_by_s": self.handover_after})
        lease.release()
        stop.wait(self.handover_after)

    def run(self, stop: threading.Event) -> None:
        lease = RelayLease(self.engine, f"relay-{self.settings.service}")
        marker = threading.Thread(target=self._run_marker, name="relay-marker", daemon=True)
        marker.start()
        waiting_logged = False
        backoff = 0.1
        failing_since: float | None = None  # since when publishing has failed, brokers away
        attempt_started = time.monotonic()
        try:
            while not stop.is_set():
                if failing_since is not None and time.monotonic() - failing_since > self.handover_after:
                    self._hand_over(lease, stop)
                    failing_since = None
                    continue
                try:
                    if not lease.holds():
                        if not waiting_logged:
                            log.info("another relay publishes this outbox; standing by")
                            waiting_logged = True
                        stop.wait(1.0)
                        continue
                    waiting_logged = False
                    if len(self._unmarked) > MAX_UNMARKED:
                        stop.wait(0.05)  # let the marks catch up
                        continue
                    attempt_started = time.monotonic()
                    published = self.publish_batch()
                    backoff, failing_since = 0.1, None
                    if published < self.settings.relay_batch_size:
                        # Caught up: let rows gather rather than publish them one or two at
                        # a time, which cost more CPU per row than the writes did.
                        stop.wait(self.settings.relay_idle_seconds)
                except Exception as exc:
                    # The broker or the database is away (or the lease's session with it
                    # ended): wait and try again; the outbox keeps every row meanwhile.
                    FAILURES.labels(self.settings.service).inc()
                    log.warning("publish failed; will retry",
                                extra={"error": logs.described(exc), "retry_in_s": backoff},
                                exc_info=logs.traceback_is_safe(exc)
                                and not isinstance(exc, (bus.PublishFailed, KafkaException)))
                    if isinstance(exc, (bus.PublishFailed, KafkaException, BufferError)):
                        self._reset_producer()
                        # Only the brokers: with the database away no relay can publish,
                        # and the lease (PostgreSQL's session lock) is gone anyway.
                        if lease.held and failing_since is None:
                            failing_since = attempt_started
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            self._marks.put(None)  # mark what was published before letting the lease go
            marker.join(timeout=30)
            self._reset_producer()
            lease.release()
