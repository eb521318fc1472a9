"""Kafka: producers, consumers and topics, configured once for every service.

One client for all of it, librdkafka (confluent-kafka): the relay's producer, the
projections' consumers, the dead letters and the topic administration. It does in C the
per-record work kafka-python did in Python (a fifth of the projections' CPU under the
LRS benchmark, docs/performance.md), and its consumers keep a learner's partitions of every
topic together (the range assignor). Every
setting we rely on is spelled out here.
"""
from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from shared.config import Settings

log = logging.getLogger(__name__)

# Topics are the system of record: read models are rebuilt from offset zero.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}

# librdkafka logs into our structured logs (not raw stderr), errors only: every caller
# reports its own failures with their context.
_LOGGING = {"log_level": 3, "logger": logging.getLogger("librdkafka")}

@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record, as the projections see it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]

    @classmethod
    def of(cls, message) -> Record:
        return cls(message.topic(), message.partition(), message.offset(), message.key(), message.value(),
                   message.headers() or [])


def records(messages) -> list[Record]:
    """The records of one `consume` call. An error in its place is the client's news (a
    broker away, a topic not there yet), which it retries by itself: logged, not a record."""
    out = []
    for message in messages:
        if message.error() is None:
            out.append(Record.of(message))
        else:
            log.info("consumer error", extra={"error": str(message.error())})
    return out


class PublishFailed(Exception):
    """Some records of a batch were not acknowledged by every in-sync replica."""


class Publisher:
    """librdkafka's idempotent producer behind the one call learnstream needs: publish a
    batch, in order, and return only when every record is acknowledged (acks=all)."""

    def __init__(self, settings: Settings, role: str = "relay", **overrides):
        config = {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "client.id": f"learnstream-{settings.service}-{role}",
            "acks": "all",
            "enable.idempotence": True,  # retries never reorder or duplicate within a partition
            "max.in.flight.requests.per.connection": 5,
            "compression.type": "lz4",
            "linger.ms": 5,
            "message.timeout.ms": 30_000,
            "queue.buffering.max.messages": 200_000,
            **_LOGGING,
        }
        config.update(overrides)
        self._producer = Producer(config)

    def publish(self, records: Iterable[tuple[str, bytes | None, bytes | None, list]], timeout: float = 35.0) -> None:
        """`records` are (topic, key, value, headers); raises PublishFailed unless all are acknowledged."""
        errors: list = []

        def delivered(error, _message):
            if error is not None:
                errors.append(error)

        for topic, key, value, headers in records:
            while True:
                try:
                    self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.05)
        remaining = self._producer.flush(timeout)
        if remaining or errors:
            raise PublishFailed(f"{remaining} records unacknowledged, {len(errors)} failed: {errors[:1]}")

    def close(self) -> None:
        self._producer.flush(1)


def consumer(settings: Settings, *, group_id: str | None, **overrides) -> Consumer:
    """A consumer that never commits by itself: the database holds the true offsets.

    With `group_id=None` (rebuilds, dead-letter tools, tests) it joins no group and is
    meant for `assign`; librdkafka still wants a group id, so it gets one it never uses."""
    config = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": f"learnstream-{settings.service}",
        "group.id": group_id or f"learnstream-{settings.service}-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,  # offsets are committed after the database transaction
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",  # a new read model starts from the first fact
        # Range, not cooperative-sticky: every topic has the same partition count, and
        # range gives partition i of every subscribed topic to the same member, so one
        # process sees all of a learner's facts (co-partitioning). Cooperative-sticky
        # balanced topic-partitions one by one: with two hosts, progress on one consumed
        # a learner's LRS statements while the other consumed their test results, and
        # the two transactions each recomputed the learner's row without the other's
        # uncommitted fact (a lost update). Range rebalances eagerly (every partition
        # is revoked and reassigned), which only happens between batches.
        "partition.assignment.strategy": "range",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
        "max.poll.interval.ms": 300_000,
        # Let the broker gather up to 100 ms of records per fetch: each batch is one
        # database transaction, and a stream of one-record batches costs a commit each.
        "fetch.min.bytes": 64 * 1024,
        "fetch.wait.max.ms": 100,
        # Notice new partitions and topics within half a minute.
        "topic.metadata.refresh.interval.ms": 30_000,
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        **_LOGGING,
    }
    config.update(overrides)
    return Consumer(config)


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers,
                        "client.id": f"learnstream-{settings.service}-admin", **_LOGGING})


def ensure_topics(settings: Settings, topics: list[str], timeout: float = 15.0) -> None:
    """Create the topics a service produces or consumes, with the configured layout.

    Every topic has the same partition count and is keyed by learner, so a learner's
    facts from every service land on the same partition number (co-partitioning).
    Raises KafkaException when the broker cannot be reached within `timeout`.
    """
    admin = _admin(settings)
    existing = admin.list_topics(timeout=timeout).topics
    config = dict(TOPIC_CONFIG, **{"min.insync.replicas": str(settings.topic_min_insync_replicas)})
    missing = [NewTopic(topic, num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor, config=config)
               for topic in topics if topic not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another service created it first
                raise
        else:
            log.info("created topic", extra={"topic": topic})
    _wait_for_metadata(admin, [t.topic for t in missing], timeout)


def _wait_for_metadata(admin: AdminClient, topics: list[str], timeout: float) -> None:
    """Return once the broker knows the new topics' partitions and each has a leader: a
    consumer that subscribes before that is assigned none of them until its next refresh."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        known = admin.list_topics(timeout=timeout).topics
        if all(t in known and known[t].partitions and not known[t].error
               and all(p.leader >= 0 for p in known[t].partitions.values()) for t in topics):
            return
        time.sleep(0.1)


def delete_topics(settings: Settings, prefix: str, timeout: float = 10.0) -> None:
    admin = _admin(settings)
    mine = [t for t in admin.list_topics(timeout=timeout).topics if t.startswith(prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=timeout).values():
            future.result()


def partitions(client, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    meta = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        return []
    return [TopicPartition(topic, p) for p in sorted(meta.partitions)]


def end_offsets(client: Consumer, tps: list[TopicPartition],
                timeout: float = 10.0) -> dict[tuple[str, int], tuple[int, int]]:
    """(low, high) watermarks per (topic, partition). A topic just created may have no
    leader yet for a moment (NOT_LEADER_FOR_PARTITION, which librdkafka does not mark
    retriable here): any error is retried within `timeout`."""
    deadline = time.monotonic() + timeout
    marks = {}
    for tp in tps:
        while True:
            try:
                marks[(tp.topic, tp.partition)] = client.get_watermark_offsets(tp, timeout=timeout)
                break
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    return marks


def read_topics(settings: Settings, topics: list[str], timeout: float = 30.0) -> list[Record]:
    """Every record on these topics now, from offset zero to each partition's end:
    for tools (dead letters) and tests, never for a projection."""
    client = consumer(settings, group_id=None)
    try:
        tps = [tp for topic in topics for tp in partitions(client, topic)]
        ends = end_offsets(client, tps)
        wanted = [TopicPartition(tp.topic, tp.partition, low) for tp in tps
                  for low, high in [ends[(tp.topic, tp.partition)]] if high > low]
        if not wanted:
            return []
        client.assign(wanted)
        remaining = {(tp.topic, tp.partition) for tp in wanted}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for message in client.consume(1000, timeout=0.5):
                if message.error() is None and message.offset() < ends[(message.topic(), message.partition())][1]:
                    records.append(Record.of(message))
            # Positions, not the last record seen: a control record is never delivered.
            remaining = {(tp.topic, tp.partition) for tp in client.position([TopicPartition(*k) for k in remaining])
                         if tp.offset < ends[(tp.topic, tp.partition)][1]}
        if remaining:
            raise TimeoutError(f"could not read {len(remaining)} partitions to their end in {timeout} s")
        return records
    finally:
        client.close()


def broker_reachable(settings: Settings, timeout: float = 1.0) -> bool:
    """A cheap liveness probe for /readyz: can we open a connection to a bootstrap server?"""
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False
