"""Faults against the cluster of deploy/cluster, under sustained load from the load host.

Each test counts the statements acknowledged (HTTP 2xx), the distinct statement ids on
the LRS topic and the statements in the progress read model, and asserts that nothing
acknowledged is missing and nothing is counted twice (`cluster.assert_exact`)."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.support import cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

# What a request may take while the database host is away, at most: the cluster's
# database timeouts are 3 s to connect and 5 s per statement or unanswered socket
# (DATABASE_*_TIMEOUT_SECONDS in deploy/cluster/cluster.sh), a pool pre-ping and a
# reconnect come to about 10 s; 15 s leaves room for this loaded machine.
DB_OUTAGE_BOUND_S = 15.0


@pytest.fixture
def healthy(hosts):
    hosts.heal()
    cluster.wait_until(lambda: cluster.co_partitioned(cluster.group_assignment()), 120,
                       "every LRS partition assigned to one progress worker")
    yield hosts
    hosts.heal()


def _no_server_errors(load: cluster.Load) -> Counter:
    statuses = Counter(r["status"] for r in load.results())
    bad = {s: n for s, n in statuses.items() if s >= 500 and s != 503}
    assert not bad, f"server errors: {statuses}"
    return statuses


def _lease_host() -> int:
    holders = cluster.lease_holders("progress")
    assert len(holders) == 1, f"progress's relay lease held by {holders}"
    return next(n for n, addr in cluster.APP_HOSTS.items() if addr in holders)


def test_broker_leader_killed_and_back(healthy):
    load = cluster.Load(cluster.lrs_targets(1, 2)).start()
    time.sleep(10)
    leaders = Counter(leader for leader, _ in cluster.partition_leaders().values())
    victim = leaders.most_common(1)[0][0]
    cluster.sh("kill-broker", str(victim))
    killed_at = time.time()
    # Its partitions get new leaders among the two left (still min.insync.replicas 2).
    cluster.wait_until(lambda: all(leader not in (victim, -1) for leader, _ in cluster.partition_leaders().values()),
                       30, "new leaders for the killed broker's partitions")
    time.sleep(15)
    during = cluster.acks_between(load, killed_at, time.time())
    cluster.sh("start-broker", str(victim), timeout=400)
    # It catches up: back in the ISR of every partition of the LRS topic.
    cluster.wait_until(lambda: all(victim in isr for _, isr in cluster.partition_leaders().values()), 180,
                       f"broker {victim} back in sync on every partition")
    time.sleep(5)
    load.stop()
    _no_server_errors(load)
    tally = cluster.settle(load)
    print(tally.summary(), f"acknowledged while broker {victim} was down: {during}")
    assert during > 0, "no write was acknowledged while a broker was down"
    cluster.assert_exact(tally)


def test_app_host_off_the_network(healthy):
    lost = _lease_host()
    survivor = 3 - lost
    load = cluster.Load(cluster.lrs_targets(1, 2)).start()
    time.sleep(10)
    cluster.sh("link-down", f"app{lost}")
    cut_at = time.monotonic()
    cluster.wait_until(lambda: cluster.lease_holders("progress") == {cluster.APP_HOSTS[survivor]}, 30,
                       "the relay lease on the surviving host")
    lease_s = time.monotonic() - cut_at
    cluster.wait_until(lambda: cluster.group_assignment().get(cluster.APP_HOSTS[survivor]) == set(range(6)), 60,
                       "every LRS partition on the surviving host")
    takeover_s = time.monotonic() - cut_at
    time.sleep(10)
    cluster.sh("link-up", f"app{lost}")
    # Back: its workers rejoin and get their share again, co-partitioned.
    cluster.wait_until(lambda: len(cluster.group_assignment()) == 2
                       and cluster.co_partitioned(cluster.group_assignment()), 90,
                       "the returning host's workers assigned partitions again")
    time.sleep(5)
    load.stop()
    _no_server_errors(load)
    tally = cluster.settle(load)
    print(tally.summary(), f"lease moved in {lease_s:.1f} s, partitions in {takeover_s:.1f} s")
    assert lease_s < 15, f"the relay lease took {lease_s:.1f} s to pass to the other host"
    cluster.assert_exact(tally)


def test_database_host_unreachable_20s(healthy):
    load = cluster.Load(cluster.lrs_targets(1, 2)).start()
    time.sleep(8)
    cluster.sh("link-down", "pg")
    down_at = time.time()
    time.sleep(20)
    cluster.sh("link-up", "pg")
    up_at = time.time()
    time.sleep(25)
    load.stop()
    results = load.results()
    statuses = _no_server_errors(load)
    # Every request got an answer (status 0: none within the load's 20 s timeout) ...
    assert statuses.get(0, 0) == 0, f"requests left without an answer: {statuses}"
    # ... in bounded time, and every refusal is a JSON 503.
    slowest = max(r["s"] for r in results)
    assert slowest <= DB_OUTAGE_BOUND_S, f"a request took {slowest:.1f} s (bound {DB_OUTAGE_BOUND_S} s)"
    refusals = [r for r in results if r["status"] >= 300]
    assert refusals, "no request was refused while the database was away: the fault did not happen"
    assert all(r["status"] == 503 and r["json"] for r in refusals), Counter((r["status"], r["json"]) for r in refusals)
    assert cluster.acks_between(load, up_at + 10, time.time()) > 0, "writes did not resume after the outage"
    tally = cluster.settle(load)
    print(tally.summary(), f"slowest answer {slowest:.2f} s; 503s {len(refusals)}; outage {up_at - down_at:.0f} s")
    cluster.assert_exact(tally)


def test_kafka_unreachable_from_an_app_host(healthy):
    cut = _lease_host()  # the host whose relay publishes progress's outbox
    load = cluster.Load(cluster.lrs_targets(1, 2)).start()
    time.sleep(8)
    cluster.sh("block-kafka", f"app{cut}")
    blocked_at = time.time()
    backlog = cluster.wait_until(cluster.outbox_backlog, 30, "statements waiting in the outbox")
    time.sleep(20)
    during = {h: sum(1 for r in load.results() if 200 <= r["status"] < 300 and r["at"] >= blocked_at
                     and r["target"] == i) for i, h in enumerate((1, 2))}
    cluster.sh("unblock-kafka", f"app{cut}")
    unblocked_at = time.time()
    cluster.wait_until(lambda: cluster.outbox_backlog() == 0, 240, "the outbox backlog drained")
    drained_s = time.time() - unblocked_at
    time.sleep(3)
    load.stop()
    _no_server_errors(load)
    tally = cluster.settle(load)
    print(tally.summary(), f"backlog seen {backlog}; acknowledged while blocked, per host {during}; "
          f"drained {drained_s:.0f} s after")
    assert all(n > 0 for n in during.values()), f"commits stopped on a host while Kafka was away: {during}"
    cluster.assert_exact(tally)


def test_a_relay_cut_off_from_kafka_hands_the_outbox_to_the_other_host(healthy):
    """The lease holder reaches the database but no broker, for longer than the relay's
    hand-over time (shared.relay.HANDOVER_AFTER_S): the other host's relay takes the
    lease and drains the outbox while the first is still cut off."""
    cut = _lease_host()
    other = 2 if cut == 1 else 1
    load = cluster.Load(cluster.lrs_targets(1, 2)).start()
    time.sleep(8)
    cluster.sh("block-kafka", f"app{cut}")
    blocked_at = time.time()
    try:
        cluster.wait_until(lambda: cluster.lease_holders("progress") == {cluster.APP_HOSTS[other]}, 150,
                           f"the lease handed to app{other}")
        handed_over_s = time.time() - blocked_at
        time.sleep(5)
        load.stop()
        # Still cut off: only the other host's relay can have published this.
        cluster.wait_until(lambda: cluster.outbox_backlog() == 0, 180, "the outbox drained by the other host")
        drained_s = time.time() - blocked_at
    finally:
        cluster.sh("unblock-kafka", f"app{cut}")
    _no_server_errors(load)
    tally = cluster.settle(load)
    print(tally.summary(), f"lease handed over {handed_over_s:.0f} s after the cut; outbox drained "
          f"{drained_s:.0f} s after it, the first host still cut off")
    cluster.assert_exact(tally)
