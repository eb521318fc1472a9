"""The cluster benchmark (make bench-cluster): deploy/cluster's hosts, load from the load
host, in one run:

1. two app hosts: statements/s acknowledged by the LRS (single-statement POSTs from
   closed-loop clients), commit -> progress read model p99, CPU per statement per tier;
2. the app host holding progress's relay lease taken off the network (link down): how
   long until the other host's session holds the lease, and until its projections own
   every LRS partition;
3. one app host (the survivor; the other still off the network): the same figures as 1;
4. the host back, its workers rejoin.

Commit -> read model: a probe, beside the load, POSTs one statement every 0.2 s and polls
the read model (learner_statements) every 25 ms from its acknowledgement until it is
there; the figure is the p99 of those probes (25 ms resolution). CPU: utime + stime from
/proc of every process in each host's namespace, by tier, over the load window, divided
by the statements acknowledged in it. This machine's two cores are shared by every
host (and by other work): compare the figures within one run, and size a deployment
from CPU per statement, not from statements/s.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import threading
import time
import uuid

from bench.common import percentile, report
from tests.support import cluster
from tests.support.cluster_load import statement

LOAD_SECONDS = float(os.environ.get("BENCH_CLUSTER_SECONDS", "30"))
CLIENTS = int(os.environ.get("BENCH_CLUSTER_CLIENTS", "8"))
TICK = os.sysconf("SC_CLK_TCK")


def tier(cmdline: str) -> str | None:
    if "kafka.Kafka" in cmdline:
        return "kafka"
    if "postgres" in cmdline:
        return "postgres"
    for service in ("enrollment", "progress", "assessment", "certification"):
        if f"services.{service}.app" in cmdline or f"learnstream-{service}" in cmdline:
            return f"{service} web"
        for part in ("relay", "projections"):
            if f"worker {service} --only {part}" in cmdline:
                return f"{service} {part}"
    return None


def cpu_by_tier(namespaces: list[str]) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for ns in namespaces:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            name = tier(cmdline)
            if name:
                seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return seconds


class Probe(threading.Thread):
    """Commit -> read model, one statement at a time, beside the load."""

    def __init__(self, targets: list[str], prefix: str):
        super().__init__(daemon=True)
        self.targets, self.prefix = targets, prefix
        auth = (cluster.STATE / "lrs-credentials").read_text().strip()
        self.headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
                        "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.lost = 0

    def run(self) -> None:
        import sqlalchemy as sa

        i = 0
        while not self.stop.is_set():
            stmt = statement(self.prefix, 10_000 + i, i % 4)
            host = self.targets[i % len(self.targets)].split("//")[1]
            i += 1
            try:
                conn = http.client.HTTPConnection(*host.split(":"), timeout=20)
                conn.request("POST", "/xapi/statements", body=json.dumps(stmt), headers=self.headers)
                ok = conn.getresponse().status == 200
                conn.close()
            except OSError:
                ok = False
            if not ok:
                continue
            acked = time.monotonic()
            with cluster.engine("progress").connect() as db:
                while time.monotonic() - acked < 60:
                    if db.scalar(sa.text("SELECT 1 FROM learner_statements WHERE statement_id = :i"),
                                 {"i": stmt["id"]}):
                        self.latencies.append(time.monotonic() - acked)
                        break
                    db.rollback()
                    time.sleep(0.025)
                else:
                    self.lost += 1
            time.sleep(max(0.0, 0.2 - (time.monotonic() - acked)))


def phase(name: str, hosts: list[int]) -> dict:
    targets = cluster.lrs_targets(*hosts)
    namespaces = [f"ls-app{h}" for h in hosts] + ["ls-k1", "ls-k2", "ls-k3", "ls-pg"]
    load = cluster.Load(targets, clients=CLIENTS).start()
    time.sleep(5)  # connections open, caches warm
    probe = Probe(targets, f"https://cluster.example.invalid/probe-{uuid.uuid4().hex[:8]}/")
    probe.start()
    cpu0, t0 = cpu_by_tier(namespaces), time.time()
    time.sleep(LOAD_SECONDS)
    cpu1, t1 = cpu_by_tier(namespaces), time.time()
    probe.stop.set()
    load.stop()
    probe.join(timeout=90)
    acked = cluster.acks_between(load, t0, t1)
    per_stmt = {k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) / max(acked, 1) * 1e6)
                for k in sorted(cpu1) if cpu1.get(k, 0) - cpu0.get(k, 0) > 0.05}
    figures = {
        f"{name}: statements/s": round(acked / (t1 - t0), 1),
        f"{name}: commit -> read model p50 s": round(percentile(probe.latencies, 50), 3),
        f"{name}: commit -> read model p99 s": round(percentile(probe.latencies, 99), 3),
        f"{name}: probes": f"{len(probe.latencies)} seen, {probe.lost} not seen in 60 s",
        f"{name}: CPU µs per statement by tier": per_stmt,
        f"{name}: CPU µs per statement, app tiers": sum(v for k, v in per_stmt.items()
                                                       if k not in ("kafka", "postgres")),
    }
    for key, value in figures.items():
        print(f"  {key}: {value}", flush=True)
    return figures


def main() -> None:
    if not cluster.is_up():
        raise SystemExit("no cluster: make cluster-up first (bench-cluster measures the one that is up)")
    cluster.heal()
    run_id = time.strftime("%Y%m%d-%H%M%S")
    figures: dict = {"load": f"{CLIENTS} closed-loop clients on the load host, single-statement POSTs, "
                             f"{LOAD_SECONDS:.0f} s per phase", "web concurrency": "1 gunicorn worker per web tier"}
    figures.update(phase("two app hosts", [1, 2]))

    lost = next(n for n, addr in cluster.APP_HOSTS.items() if addr in cluster.lease_holders("progress"))
    survivor = 3 - lost
    load = cluster.Load(cluster.lrs_targets(survivor), clients=2).start()  # the survivor is busy meanwhile
    time.sleep(3)
    cluster.sh("link-down", f"app{lost}")
    cut = time.monotonic()
    cluster.wait_until(lambda: cluster.lease_holders("progress") == {cluster.APP_HOSTS[survivor]}, 60,
                       "lease on the survivor", interval=0.1)
    figures["relay lease failover s (link down -> other host holds it)"] = round(time.monotonic() - cut, 2)
    cluster.wait_until(lambda: cluster.group_assignment().get(cluster.APP_HOSTS[survivor]) == set(range(6)), 120,
                       "partitions on the survivor", interval=0.2)
    figures["partition takeover s (link down -> survivor owns all 6 LRS partitions)"] = round(time.monotonic() - cut, 2)
    load.stop()
    print({k: v for k, v in figures.items() if "s (" in k}, flush=True)

    figures.update(phase("one app host", [survivor]))
    cluster.sh("link-up", f"app{lost}")
    cluster.wait_until(lambda: len(cluster.group_assignment()) == 2, 120, "the host's workers back")
    two, one = figures["two app hosts: statements/s"], figures["one app host: statements/s"]
    figures["ratio statements/s two hosts / one host"] = round(two / one, 2) if one else None
    report("cluster", run_id, figures)


if __name__ == "__main__":
    main()
