"""Two workers of one service share its partitions so that each learner's facts, from
every topic, reach one of them (co-partitioning). The cluster (deploy/cluster) showed
the cooperative-sticky assignor splitting them: one host had a learner's LRS partition,
the other their assessment partition, and the learner's row lost an update."""
from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.integration


def _assignment(bootstrap: str, group: str) -> list[dict[str, set[int]]]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    members = []
    for member in description.members:
        topics: dict[str, set[int]] = {}
        for tp in member.assignment.topic_partitions:
            topics.setdefault(tp.topic, set()).add(tp.partition)
        members.append(topics)
    return members


def test_two_workers_get_the_same_partition_numbers_of_every_topic(deployment):
    settings = deployment.settings("progress")
    bootstrap = deployment.env["KAFKA_BOOTSTRAP_SERVERS"]
    # One worker first, holding every partition; then a second joins, as when a host
    # starts after another: sticky assignment then moved whole topics to the newcomer.
    deployment.start_worker("progress")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        first = _assignment(bootstrap, settings.consumer_group)
        if len(first) == 1 and sum(len(p) for p in first[0].values()) == 6 * max(len(first[0]), 1) > 6:
            break
        time.sleep(0.5)
    deployment.start_worker("progress")
    deadline = time.monotonic() + 90
    members: list = []
    while time.monotonic() < deadline:
        members = _assignment(bootstrap, settings.consumer_group)
        if len(members) == 2 and all(members):
            total = sum(len(parts) for m in members for parts in m.values())
            if total == 6 * len(members[0]):  # every partition of every topic assigned
                break
        time.sleep(0.5)
    assert len(members) == 2 and all(members), f"two members with partitions expected: {members}"
    numbers = []
    for topics in members:
        sets = list(topics.values())
        # One member: the same partition numbers of every topic it reads.
        assert all(s == sets[0] for s in sets), f"a member's partitions differ between topics: {topics}"
        numbers.append(sets[0])
    assert not numbers[0] & numbers[1] and numbers[0] | numbers[1] == set(range(6)), numbers
