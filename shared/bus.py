"""Kafka: producers, consumers and topics, configured once for every service.

kafka-python 3.x changed several defaults; every setting we rely on is spelled out here.
"""
from __future__ import annotations

import logging
import socket

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.config import Settings

log = logging.getLogger(__name__)

# Topics are the system of record: read models are rebuilt from offset zero.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


def producer(settings: Settings, **overrides) -> KafkaProducer:
    config = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"learnstream-{settings.service}",
        acks="all",
        enable_idempotence=True,  # retries never reorder or duplicate within a partition
        max_in_flight_requests_per_connection=5,
        retries=2_147_483_647,
        delivery_timeout_ms=30_000,
        request_timeout_ms=10_000,
        max_block_ms=5_000,
        compression_type="lz4",  # triples kafka-python's throughput (docs/performance.md)
        linger_ms=5,
        batch_size=64 * 1024,
    )
    config.update(overrides)
    return KafkaProducer(**config)


class PublishFailed(Exception):
    """Some records of a batch were not acknowledged by every in-sync replica."""


class RelayProducer:
    """librdkafka's idempotent producer (confluent-kafka) behind the one call the relay
    needs: publish a batch, in order, and return only when every record is acknowledged.

    The relay is where learnstream spends most of its Kafka CPU; kafka-python does the
    per-message work in Python, librdkafka in C."""

    def __init__(self, settings: Settings, **overrides):
        from confluent_kafka import Producer

        config = {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "client.id": f"learnstream-{settings.service}-relay",
            "acks": "all",
            "enable.idempotence": True,  # retries never reorder or duplicate within a partition
            "max.in.flight.requests.per.connection": 5,
            "compression.type": "lz4",
            "linger.ms": 5,
            "message.timeout.ms": 30_000,
            "queue.buffering.max.messages": 200_000,
            "log_level": 3,  # errors only: the relay reports failures itself
            "logger": logging.getLogger("librdkafka"),  # into our structured logs, not raw stderr
        }
        config.update(overrides)
        self._producer = Producer(config)

    def publish(self, records: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]], timeout: float = 35.0) -> None:
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


def consumer(settings: Settings, *, group_id: str | None, **overrides) -> KafkaConsumer:
    config = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"learnstream-{settings.service}",
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed after the database transaction
        auto_offset_reset="earliest",  # a new read model starts from the first fact
        max_poll_records=settings.consumer_max_records,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=300_000,
        # Let the broker gather up to 100 ms of records per fetch: each batch is one
        # database transaction, and a stream of one-record batches costs a commit each.
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=100,
        # Notice new partitions and topics within half a minute, not kafka-python's 5 minutes.
        metadata_max_age_ms=30_000,
        isolation_level="read_committed",
    )
    config.update(overrides)
    return KafkaConsumer(**config)


def ensure_topics(settings: Settings, topics: list[str]) -> None:
    """Create the topics a service produces or consumes, with the configured layout.

    Every topic has the same partition count and is keyed by learner, so a learner's
    facts from every service land on the same partition number (co-partitioning).
    """
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                             client_id=f"learnstream-{settings.service}-admin",
                             request_timeout_ms=15_000)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=topic, num_partitions=settings.topic_partitions,
                     replication_factor=settings.topic_replication_factor, topic_configs=TOPIC_CONFIG)
            for topic in topics if topic not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another service created it first
            log.info("created topics", extra={"topics": [t.name for t in missing]})
    finally:
        admin.close()


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
