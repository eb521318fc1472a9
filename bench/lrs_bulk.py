"""Issue 12, item 9: what one client's bulk import does to everyone else's small POSTs.

Against one fresh progress service as `make run` deploys it (gunicorn with 2 gevent
workers, the relay and the projections in processes of their own), on a free port:
  baseline  `--clients` clients, each POSTing one statement at a time with a short pause
            (well under the server's capacity), for `--seconds`
  bulk      the same clients, and meanwhile one client POSTs `--bulk` statements in one
            request (50,000 are about 15 MB) `--repeat` times
It reports the p50/p99/max of the small POSTs in each phase (during the bulk phase,
only those sent while a bulk request was in flight) and the ratio of the two p99s:
the machine is shared, so compare the ratio within a run, not absolute figures
across runs. Run it on two commits to compare before and after.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import threading
import time
import uuid

import orjson

from bench.common import isolated_stack, percentile, report
from services.progress.lrs import auth
from shared import db


def small_statement(i: int) -> dict:
    return {"actor": {"objectType": "Agent", "mbox": f"mailto:official.{i}@agency.example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/progressed"},
            "object": {"objectType": "Activity", "id": f"https://content.example.org/dsk/module/{i % 10}"},
            "result": {"completion": False, "duration": "PT4M12S"},
            "context": {"registration": str(uuid.UUID(int=i % 5000))},
            "timestamp": "2026-11-23T09:00:00.000Z"}


def bulk_body(count: int) -> bytes:
    """About 300 bytes a statement (the reported 50,000 in 15 MB), with client-chosen ids,
    as a bulk importer that may retry should send them."""
    return orjson.dumps([{"id": str(uuid.uuid4()), "actor": {"mbox": f"mailto:official.{i}@agency.example.org"},
                          "verb": {"id": "http://adlnet.gov/expapi/verbs/progressed"},
                          "object": {"id": f"https://content.example.org/dsk/module/{i % 10}"},
                          "context": {"registration": str(uuid.UUID(int=i % 5000))}} for i in range(count)])


class Client:
    def __init__(self, port: int, authorization: str):
        self.port, self.headers = port, {"Authorization": authorization, "X-Experience-API-Version": "2.0.0",
                                         "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, body: bytes) -> tuple[int, float]:
        started = time.perf_counter()
        self.conn.request("POST", "/xapi/statements", body=body, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started


def small_posters(port, authorization, clients, pause, stop) -> tuple[list, list[threading.Thread]]:
    """(sent_at, latency, status) of every small POST, appended as they finish."""
    samples: list[tuple[float, float, int]] = []

    def run(n: int) -> None:
        client, i = Client(port, authorization), n * 1_000_000
        while not stop.is_set():
            sent = time.monotonic()
            status, latency = client.post(orjson.dumps(small_statement(i)))
            samples.append((sent, latency, status))
            i += 1
            time.sleep(pause)
    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    return samples, threads


def summary(latencies: list[float]) -> dict:
    ms = [value * 1000 for value in latencies]
    return {"count": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms, default=float("nan")), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds each small client waits between POSTs")
    parser.add_argument("--seconds", type=int, default=10, help="baseline phase length")
    parser.add_argument("--bulk", type=int, default=50_000, help="statements in the bulk request")
    parser.add_argument("--repeat", type=int, default=2, help="bulk requests, one after another")
    args = parser.parse_args()
    # isolated_stack gives the service a free port of its own (never the one a running
    # `make run` holds); the clients must use that one.
    stack, run_id = isolated_stack(("progress",))
    port = int(stack.env["PROGRESS_PORT"])
    stack.prepare()
    engine = db.create_engine(stack.settings("progress").database_url)
    key, secret = auth.create(engine, "bench", ["all"])
    authorization = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    body = bulk_body(args.bulk)
    print(f"LRS bulk benchmark {run_id} on port {port}: {args.clients} small clients, "
          f"bulk of {args.bulk} statements ({len(body) / 1e6:.1f} MB) x{args.repeat}", flush=True)
    figures: dict = {}
    stop = threading.Event()
    try:
        stack.start()
        warm = Client(port, authorization)
        for i in range(50):
            warm.post(orjson.dumps(small_statement(i)))
        samples, threads = small_posters(port, authorization, args.clients, args.pause, stop)
        time.sleep(args.seconds)
        baseline_end = time.monotonic()
        windows, bulk_answers = [], []
        for _ in range(args.repeat):
            time.sleep(1)
            started = time.monotonic()
            status, took = Client(port, authorization).post(body)
            windows.append((started, time.monotonic()))
            bulk_answers.append({"status": status, "seconds": round(took, 2)})
            print(f"  bulk: {bulk_answers[-1]}", flush=True)
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(timeout=130)
        done = list(samples)
        baseline = [lat for sent, lat, _ in done if sent < baseline_end]
        during = [lat for sent, lat, _ in done if any(a <= sent <= b for a, b in windows)]
        base, bulk = summary(baseline), summary(during)
        figures = {"small_clients": args.clients, "bulk_statements": args.bulk, "bulk_mb": round(len(body) / 1e6, 1),
                   "bulk_answers": bulk_answers, "small_errors": sum(1 for *_, s in done if s != 200),
                   "baseline": base, "during_bulk": bulk,
                   "p99_ratio_during_bulk_to_baseline": round(bulk["p99_ms"] / base["p99_ms"], 1),
                   "max_ratio_during_bulk_to_baseline": round(bulk["max_ms"] / base["max_ms"], 1)}
    finally:
        stop.set()
        stack.stop()
        engine.dispose()
    report("lrs_bulk", run_id, figures)


if __name__ == "__main__":
    main()
