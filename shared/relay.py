"""The outbox relay: publishes committed outbox rows to Kafka, in order, then marks them.

A crash between publishing and marking republishes those rows: consumers deduplicate by
statement id, so the bus may carry a duplicate but never loses a committed statement.
While the broker is down the relay waits and retries; writers are never affected.
"""
from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from confluent_kafka import KafkaException
from prometheus_client import Counter
from sqlalchemy.engine import Engine

from shared import bus, db, events, xapi
from shared.config import Settings
from shared.lease import RelayLease

log = logging.getLogger(__name__)

PUBLISHED = Counter("learnstream_outbox_published_total", "Outbox rows published to Kafka", ["service"])
FAILURES = Counter("learnstream_outbox_publish_failures_total", "Failed publish attempts", ["service"])

MAX_BACKOFF_S = 5.0


class Relay:
    def __init__(self, settings: Settings, engine: Engine, outbox: sa.Table, producer_factory=None):
        self.settings = settings
        self.engine = engine
        self.outbox = outbox
        self._producer_factory = producer_factory or (lambda: bus.RelayProducer(settings))
        self._producer = None

    def publish_batch(self) -> int:
        """Publish the oldest unpublished rows; return how many were published."""
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(self.outbox.c.id, self.outbox.c.topic, self.outbox.c.key,
                          self.outbox.c.event_type, self.outbox.c.payload)
                .where(self.outbox.c.published_at.is_(None))
                .order_by(self.outbox.c.id)
                .limit(self.settings.relay_batch_size)
            ).all()
        if not rows:
            return 0
        self._ensure_producer().publish([
            (row.topic, row.key.encode(), bytes(row.payload), events.headers(self.settings.service, row.event_type))
            for row in rows])
        with self.engine.begin() as conn:
            conn.execute(
                self.outbox.update()
                .where(self.outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=xapi.utc_now())
            )
        PUBLISHED.labels(self.settings.service).inc(len(rows))
        return len(rows)

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

    def run(self, stop: threading.Event) -> None:
        lease = RelayLease(self.engine, f"relay-{self.settings.service}")
        waiting_logged = False
        backoff = 0.1
        while not stop.is_set():
            if not lease.try_acquire():
                if not waiting_logged:
                    log.info("another relay publishes this outbox; standing by")
                    waiting_logged = True
                stop.wait(1.0)
                continue
            try:
                published = self.publish_batch()
                backoff = 0.1
                if published < self.settings.relay_batch_size:
                    # Caught up: let rows gather rather than publish (and mark) them one
                    # or two at a time, which cost more CPU per row than the writes did.
                    stop.wait(self.settings.relay_idle_seconds)
            except (bus.PublishFailed, KafkaException, OSError) as exc:
                FAILURES.labels(self.settings.service).inc()
                log.warning("publish failed; will retry", extra={"error": repr(exc), "retry_in_s": backoff})
                self._reset_producer()
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        self._reset_producer()
        lease.release()

    def drain(self, timeout: float = 60.0) -> None:
        """Publish everything pending now (CLI and tests); raise if it cannot."""
        deadline = time.monotonic() + timeout
        while self.publish_batch():
            if time.monotonic() > deadline:
                raise TimeoutError("outbox not drained in time")
