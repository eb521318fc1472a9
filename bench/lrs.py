"""Issue 3's benchmark: sustained xAPI ingestion through /xapi/statements, and reads.

Phases, one after another against one fresh progress service (gunicorn with gevent
workers, its relay publishing to learnstream.lrs.v1, and its projections) after a 3 s
warm-up, driven by wrk (https://github.com/wg/wrk):
  single   one statement per POST, enough connections to saturate the server
  paced    one statement per POST at about half the single rate (latency under load)
  batch    100 statements per POST
  pages    GET /xapi/statements?limit=100
Statements/s are counted in the database (committed), not from responses. The lag from
commit to topic is the outbox's published_at - created_at per statement (created in
the request's transaction; published once Kafka acknowledged it). Then Ralph 5.1, the peer,
under the same single and batch load (bench/peer.py; --no-peer skips it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.common import isolated_stack, percentile, report
from services.progress import tables as progress_tables
from services.progress.lrs import auth
from services.progress.lrs import tables as lrs_tables
from shared import db


def statement(i: int) -> dict:
    return {
        "actor": {"objectType": "Agent", "name": f"Official {i}", "mbox": f"mailto:official.{i}@agency.example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/progressed", "display": {"en-US": "progressed"}},
        "object": {"objectType": "Activity", "id": f"https://content.example.org/dsk/module/{i % 10}",
                   "definition": {"name": {"en-US": f"Module {i % 10}"},
                                  "type": "http://adlnet.gov/expapi/activities/module"}},
        "result": {"completion": False, "duration": "PT4M12S",
                   "extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": 40}},
        "context": {"registration": str(uuid.UUID(int=i % 5000)), "platform": "bench player",
                    "contextActivities": {"parent": [{"id": "https://content.example.org/dsk"}],
                                          "grouping": [{"id": "https://learnstream.dev/cohorts/bench"}]}},
        "timestamp": "2026-11-23T09:00:00.000Z",
    }


LUA = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "{authorization}"
wrk.headers["X-Experience-API-Version"] = "2.0.0"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
{extra}
"""


def wrk(url: str, script: str, connections: int, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                          "-s", handle.name, url],
                         capture_output=True, text=True, check=True).stdout
    Path(handle.name).unlink()

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket.group(1) if socket else "none"}


def committed(engine) -> int:
    with db.reading(engine) as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(lrs_tables.statements))


def publish_lag(engine, since_id: int, timeout: float = 120) -> dict:
    """Wait until the outbox is drained; the per-statement commit-to-topic lag."""
    outbox = progress_tables.outbox
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        with db.reading(engine) as conn:
            pending = conn.scalar(sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
        if not pending:
            break
        time.sleep(0.1)
    drained_after = time.monotonic() - started
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(outbox.c.created_at, outbox.c.published_at)
                            .where(outbox.c.id > since_id, outbox.c.published_at.is_not(None))).all()
    lags = [(row.published_at - row.created_at).total_seconds() for row in rows]
    return {"commit_to_topic_p50_s": round(percentile(lags, 50), 3),
            "commit_to_topic_p99_s": round(percentile(lags, 99), 3),
            "commit_to_topic_max_s": round(max(lags, default=float("nan")), 3),
            "outbox_drained_s_after_load": round(drained_after, 2)}


def projections_caught_up(engine, timeout: float = 300) -> float:
    """Seconds until the projections have applied every stored statement (each one they
    apply leaves its id in processed_statements, in the same transaction)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with db.reading(engine) as conn:
            stored, applied = (conn.scalar(sa.select(sa.func.count()).select_from(table))
                               for table in (lrs_tables.statements, progress_tables.processed_statements))
        behind = stored - applied
        if behind <= 0:
            break
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def last_outbox_id(engine) -> int:
    with db.reading(engine) as conn:
        return conn.scalar(sa.select(sa.func.coalesce(sa.func.max(progress_tables.outbox.c.id), 0)))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(stack) -> dict[str, float]:
    """CPU seconds so far: the web tier (gunicorn workers), the relay, the projections,
    and the whole machine (wrk, broker, database, anything else)."""
    snapshot = {"web": 0.0, "relay": 0.0, "projections": 0.0}
    for label, process in stack.processes:
        part = label.split()[-1]
        if part == "web":
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            pids = [int(p) for p in children.read_text().split()] if children.exists() else []
            snapshot["web"] += sum(_cpu_seconds(pid) for pid in pids) + _cpu_seconds(process.pid)
        else:
            snapshot[part] += _cpu_seconds(process.pid)
    snapshot["machine"] = _machine_busy_seconds()
    return snapshot


def cpu_split(before: dict, after: dict, elapsed: float, statements: int) -> dict:
    used = {k: after[k] - before[k] for k in before}
    other = used["machine"] - used["web"] - used["relay"] - used["projections"]
    per = max(statements, 1)
    return {"cpu_cores_busy": round(used["machine"] / elapsed, 2),
            "web_us_per_statement": round(used["web"] / per * 1e6),
            "relay_us_per_statement": round(used["relay"] / per * 1e6),
            "projections_us_per_statement": round(used["projections"] / per * 1e6),
            "rest_us_per_statement": round(other / per * 1e6)}


CPU_PARTS = ("web_us_per_statement", "relay_us_per_statement", "projections_us_per_statement",
             "rest_us_per_statement")


def phase(stack, engine, url, authorization, name, body, connections, seconds, extra="") -> dict:
    before, outbox_before = committed(engine), last_outbox_id(engine)
    script = LUA.format(method="POST", authorization=authorization, body=json.dumps(body), extra=extra)
    cpu_before = cpu_snapshot(stack)
    started = time.monotonic()
    figures = wrk(url, script, connections, seconds)
    elapsed = time.monotonic() - started
    stored = committed(engine) - before
    figures.update(statements=stored, statements_per_second=round(stored / elapsed),
                   connections=connections, **publish_lag(engine, outbox_before))
    # Read models may lag during load (they are not on the request's path); the phase's
    # CPU includes catching up, so that the projections' share of the work is all in.
    figures["projections_caught_up_s_after_load"] = projections_caught_up(engine)
    figures.update(cpu_split(cpu_before, cpu_snapshot(stack), time.monotonic() - started, stored))
    print(f"  {name}: {figures}", flush=True)
    return figures


def auth_cost(stack, calls: int = 20_000) -> dict:
    """Issue 14's goal: checking credentials adds <= 20 us to a single-statement POST.
    What the POST's credential check (protocol._authenticate, the same call
    StatementIngest makes) costs per request once a key is verified, in process, for an
    LRS credential (its own table, now after the accounts' lookup) and an LMS client's
    account; and the LRS credential's check as it was before accounts (an Lrs without them)."""
    import base64
    import dataclasses

    from werkzeug.datastructures import Headers

    from services.progress.lrs import protocol
    from shared import account_tables, accounts, xapi
    from shared.service import load

    app = load("progress").create_app(stack.settings("progress"))
    lrs = app.wsgi_app.lrs
    key, secret = auth.create(lrs.engine, "bench", ["all"])
    account = accounts.new_account("bench-lms", "bench LMS", "bench-lms-secret", "bench", xapi.utc_now(),
                                   role="lms_client", scopes=["all"])
    with lrs.engine.begin() as conn:  # as the accounts projection writes it
        account_tables.store(conn, progress_tables.accounts, [account])

    def per_call(check, rounds: int = 25) -> float:
        """The best of `rounds` runs of calls // rounds checks: on a shared machine the
        others are the neighbours' preemptions, not the check's cost."""
        check()  # the first verifies the scrypt hash; the rest are what a busy client costs
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(calls // rounds):
                check()
            best = min(best, (time.perf_counter() - started) / (calls // rounds))
        return round(best * 1e6, 2)

    def request(k: str, s: str) -> protocol.XRequest:
        header = "Basic " + base64.b64encode(f"{k}:{s}".encode()).decode()
        return protocol.XRequest(method="POST", params={}, headers=Headers({"Authorization": header}), body=b"",
                                 content_type="application/json")

    lrs_key, lms_key = request(key, secret), request("bench-lms", "bench-lms-secret")
    figures = {
        "auth_us_per_request_lrs_credential": per_call(lambda: protocol._authenticate(lrs_key, lrs)),
        "auth_us_per_request_lms_client_account": per_call(lambda: protocol._authenticate(lms_key, lrs)),
        "auth_us_per_request_lrs_credential_without_accounts": per_call(
            lambda: protocol._authenticate(lrs_key, dataclasses.replace(lrs, accounts=None))),
        "auth_goal": "<= 20 us per single-statement POST",
    }
    lrs.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    # Single statements need many clients in flight: with 64, all of a web process's clients
    # fit in one group commit and its CPU idles while that commit flushes (1.55 cores busy).
    # 128 saturates the server (1,850-1,880/s; 192 gave the same rate with a longer p99).
    # Batches of 100: 16 clients saturate the web tier's share of SQLite's write lock
    # (~4,150/s). 32 and 64 took 15-30% more, the p99 doubled or tripled (1-1.8 s) and the
    # projections fell behind: the web held the lock longer and they waited.
    parser.add_argument("--connections", type=int, default=128, help="clients for single statements")
    parser.add_argument("--batch-connections", type=int, default=16, help="clients for batches of 100")
    parser.add_argument("--page-connections", type=int, default=64, help="clients for GET pages")
    parser.add_argument("--no-peer", action="store_true", help="skip Ralph under the same load (bench/peer.py)")
    parser.add_argument("--auth-only", action="store_true",
                        help="only what checking credentials costs per statement POST (issue 14), in process")
    args = parser.parse_args()
    if args.auth_only:
        stack, run_id = isolated_stack(("progress",))
        stack.prepare()
        report("lrs-auth", run_id, auth_cost(stack))
        return
    if shutil.which("wrk") is None:
        sys.exit("bench.lrs needs wrk (the HTTP load generator): make bench-deps, or build it from "
                 "https://github.com/wg/wrk, then run again.")
    stack, run_id = isolated_stack(("progress",))
    print(f"LRS benchmark {run_id}: {args.seconds} s per phase, {args.connections} connections "
          f"({args.batch_connections} for batches, {args.page_connections} for pages)")
    stack.prepare()
    engine = db.create_engine(stack.settings("progress").database_url)
    key, secret = auth.create(engine, "bench", ["all"])
    import base64
    authorization = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    url = f"{stack.url('progress')}/xapi/statements"
    figures: dict = {}
    try:
        stack.start()
        # Warm-up, not measured: a fresh stack's first second carries one-off costs (the
        # relay's first metadata and producer-id round trips on topics just created held
        # the first statements up to 1.1 s; afterwards the per-second p99 was <= 0.1 s).
        phase(stack, engine, url, authorization, "warm-up", statement(0), 8, 3)
        single = phase(stack, engine, url, authorization, "single", statement(1), args.connections, args.seconds)
        rate = single["statements_per_second"] / 2
        # wrk has no fixed rate: each of 32 connections waits between requests to reach ~half.
        delay_ms = max(1, int(32 * 1000 / max(rate, 1)))
        paced = phase(stack, engine, url, authorization, "paced", statement(2), 32, args.seconds,
                      extra=f"function delay() return {delay_ms} end")
        batch = phase(stack, engine, url, authorization, "batch", [statement(i) for i in range(100)],
                      args.batch_connections, args.seconds)
        pages_script = LUA.format(method="GET", authorization=authorization, body="", extra="")
        pages = wrk(f"{url}?limit=100", pages_script, args.page_connections, max(10, args.seconds // 2))
        print(f"  pages: {pages}", flush=True)
        figures = {
            "single_statements_per_second": single["statements_per_second"],
            "single_p50_ms": single["p50_ms"], "single_p99_ms": single["p99_ms"],
            "single_errors": single["non_2xx"],
            "single_commit_to_topic_p99_s": single["commit_to_topic_p99_s"],
            "paced_statements_per_second": paced["statements_per_second"],
            "paced_p50_ms": paced["p50_ms"], "paced_p99_ms": paced["p99_ms"],
            "paced_commit_to_topic_p99_s": paced["commit_to_topic_p99_s"],
            "batch100_statements_per_second": batch["statements_per_second"],
            "batch100_p50_ms": batch["p50_ms"], "batch100_p99_ms": batch["p99_ms"],
            "batch100_errors": batch["non_2xx"],
            "batch100_commit_to_topic_p99_s": batch["commit_to_topic_p99_s"],
            "batch100_outbox_drained_s_after_load": batch["outbox_drained_s_after_load"],
            "batch100_projections_caught_up_s_after_load": batch["projections_caught_up_s_after_load"],
            "single_cpu_us_per_statement_web_relay_projections_rest": [single[k] for k in CPU_PARTS],
            "batch100_cpu_us_per_statement_web_relay_projections_rest": [batch[k] for k in CPU_PARTS],
            "cpu_cores_busy_single_batch": [single["cpu_cores_busy"], batch["cpu_cores_busy"]],
            "pages_of_100_per_second": pages["requests_per_second"],
            "pages_p50_ms": pages["p50_ms"], "pages_p99_ms": pages["p99_ms"],
            "goal": ">=1,500/s single, >=10,000/s in 100s, on Kafka within 1 s, single p99 <100 ms at half rate",
        }
    finally:
        stack.stop()
        engine.dispose()
    if figures and not args.no_peer:  # the peer in the same run, on the machine just freed
        from bench import peer
        figures.update(peer.against_ralph(figures, key, secret, args.seconds, args.connections,
                                          args.batch_connections))
    report("lrs", run_id, figures)


if __name__ == "__main__":
    main()
