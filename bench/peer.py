"""The peer in the same run: Ralph 5.1's LRS under the same wrk load as bench.lrs.

bench.lrs calls `against_ralph` once its own stack has stopped, so the two never share the
machine (others may: compare within a run). Ralph (`ralph-malph[cli,lrs]==5.1.0`) lives in a
virtualenv of its own, var/ralph-venv, made here the first time (pip shows its progress).
Its file-system backend is the only one that runs on this machine (the others need
Elasticsearch, MongoDB, ClickHouse or another LRS); it is started by uvicorn with
bench/ralph_app.py, which makes the backend append (as shipped it refuses every write
after the first).

The same for both: the statements (bench.lrs.statement), one per POST with the same
clients, and batches of 100 with the same clients; the same seconds per phase after the
same 3 s warm-up of 8 clients; HTTP basic auth with the same key and secret (both LRSs
cache a verified credential); xAPI 2.0.0 headers. Statements are counted where they are
stored (learnstream's database, Ralph's fs_lrs.jsonl), not from responses. Each Ralph
phase starts on an empty store and history: its backend rereads the whole file (to look
for duplicate ids) and rewrites its whole history file on every POST, so its rate falls
as the file grows; learnstream's phases share one database. The multiples are therefore,
if anything, in Ralph's favour.

    python -m bench.peer [--seconds 20] [--workers 2]   # Ralph alone, for tuning
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from shared.config import REPO_ROOT, VAR_DIR

RALPH_VENV = VAR_DIR / "ralph-venv"
# ralph-malph 5.1.0's `lrs` extra lacks requests, which ralph.api.auth.oidc imports at
# start-up (ModuleNotFoundError without it, even with basic auth only).
RALPH_REQUIREMENTS = ("ralph-malph[cli,lrs]==5.1.0", "requests>=2.31")
# Uvicorn worker processes. Each serves one request at a time (Ralph's endpoints are
# async but call the file backend synchronously). On the 2-core machine (10 s phases,
# 128 / 16 clients): 1 worker 30 single/s and 483/s in batches, 2 workers 40 and 623,
# 4 workers 39 and 629, 8 workers 40 and 428 with read errors. 2 (tied with 4, one per
# core, as learnstream's 2 web workers); override with RALPH_WORKERS.
DEFAULT_WORKERS = 2


def ensure_ralph() -> Path:
    """Ralph's virtualenv, made and filled when missing; the path of its python."""
    python = RALPH_VENV / "bin" / "python"
    stamp = RALPH_VENV / ".installed"
    wanted = "\n".join(RALPH_REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"installing Ralph into {RALPH_VENV} ({' '.join(RALPH_REQUIREMENTS)}) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(RALPH_VENV)], check=True)
    # No -q: pip's progress bars and "Collecting ..." lines are the progress.
    subprocess.run([str(python), "-m", "pip", "install", "--progress-bar", "on", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--progress-bar", "on", *RALPH_REQUIREMENTS],
                   check=True)
    stamp.write_text(wanted)
    print("Ralph installed.", flush=True)
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Ralph:
    """One Ralph LRS on a fresh directory (store, history, auth file) and a free port."""

    def __init__(self, python: Path, key: str, secret: str, workers: int) -> None:
        self.python, self.key, self.secret, self.workers = python, key, secret, workers
        self.home = Path(tempfile.mkdtemp(prefix="ralph-", dir=VAR_DIR / "bench"))
        self.store = self.home / "store" / "fs_lrs.jsonl"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/xAPI/statements"
        self.env = dict(
            os.environ,
            RALPH_APP_DIR=str(self.home), RALPH_AUTH_FILE=str(self.home / "auth.json"),
            RALPH_HISTORY_FILE=str(self.home / "history.json"), RALPH_RUNSERVER_BACKEND="fs",
            RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH=str(self.store.parent),
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        bin_dir = self.python.parent
        subprocess.run([str(bin_dir / "ralph"), "auth", "-u", self.key, "-p", self.secret, "-s", "all",
                        "-M", "mailto:bench@learnstream.dev", "-w"],
                       env=self.env, cwd=self.home, check=True, capture_output=True)
        self.log = (self.home / "uvicorn.log").open("w")
        # uvicorn with uvloop and httptools (both installed with ralph's lrs extra), no
        # access log (learnstream's gunicorn keeps none either).
        self.process = subprocess.Popen(
            [str(bin_dir / "uvicorn"), "--app-dir", str(REPO_ROOT / "bench"), "ralph_app:app",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
             "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
            env=self.env, cwd=self.home, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        heartbeat = f"http://127.0.0.1:{self.port}/__lbheartbeat__"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Ralph exited ({self.process.returncode}): "
                                   f"{(self.home / 'uvicorn.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(heartbeat, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("Ralph did not answer within 60 s") from None
                time.sleep(0.2)
        self._prime_credentials()

    def _prime_credentials(self) -> None:
        """Verify the credential once in every worker before any load. Ralph caches a
        verified credential per process, but the bcrypt check (cost 12, 0.3 s and more
        on this machine) runs in a thread pool, and 128 clients arriving on a cold
        cache all miss it: the first seconds went to 128 bcrypt checks (0 requests
        answered in 8 s). learnstream's warm-up does the same for its scrypt cache.
        Done when 10 requests in a row answer without a check (< 100 ms)."""
        request = urllib.request.Request(f"{self.url}?limit=1", headers={
            "Authorization": "Basic " + base64.b64encode(f"{self.key}:{self.secret}".encode()).decode(),
            "X-Experience-API-Version": "2.0.0"})
        fast, deadline = 0, time.monotonic() + 120
        while fast < 10 and time.monotonic() < deadline:
            started = time.monotonic()
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            fast = fast + 1 if time.monotonic() - started < 0.1 else 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """User + system CPU so far of uvicorn and every process under it (its workers)."""
        from bench.lrs import _cpu_seconds

        total, pending = 0.0, [self.process.pid] if self.process else []
        while pending:
            pid = pending.pop()
            total += _cpu_seconds(pid)
            children = Path(f"/proc/{pid}/task/{pid}/children")
            try:
                pending += [int(p) for p in children.read_text().split()]
            except OSError:
                pass
        return total

    def stored(self) -> tuple[int, int]:
        """Statements in the store, and lines that are not one JSON statement (workers
        appending at once could interleave; none seen with the settings here)."""
        good = bad = 0
        if self.store.exists():
            with self.store.open("rb") as handle:
                for line in handle:
                    try:
                        good += isinstance(json.loads(line), dict)
                    except ValueError:
                        bad += 1
        return good, bad


def ralph_phase(python: Path, key: str, secret: str, workers: int, name: str, body, connections: int,
                seconds: int) -> dict:
    """A fresh Ralph, the same warm-up as bench.lrs, then one measured phase."""
    from bench.lrs import LUA, statement, wrk

    authorization = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    ralph = Ralph(python, key, secret, workers)
    try:
        ralph.start()
        warm = LUA.format(method="POST", authorization=authorization, body=json.dumps(statement(0)), extra="")
        wrk(ralph.url, warm, 8, 3)
        before, _ = ralph.stored()
        script = LUA.format(method="POST", authorization=authorization, body=json.dumps(body), extra="")
        cpu_before = ralph.cpu_seconds()
        started = time.monotonic()
        figures = wrk(ralph.url, script, connections, seconds)
        elapsed = time.monotonic() - started
        stored = ralph.stored()[0] - before  # counted at once, as bench.lrs counts
        # CPU per statement once the requests wrk left in flight are done (their CPU and
        # their statements both in), as bench.lrs waits for its drain.
        time.sleep(1)
        after, bad = ralph.stored()
        cpu = ralph.cpu_seconds() - cpu_before
        figures.update(statements=stored, statements_per_second=round(stored / elapsed, 1),
                       server_cpu_us_per_statement=round(cpu / max(after - before, 1) * 1e6),
                       connections=connections, workers=workers, unreadable_lines=bad)
    finally:
        ralph.stop()
    print(f"  ralph {name}: {figures}", flush=True)
    return figures


def ralph_rates(key: str, secret: str, seconds: int, connections: int, batch_connections: int,
                workers: int | None = None) -> dict:
    from bench.lrs import statement

    python = ensure_ralph()
    workers = workers or int(os.environ.get("RALPH_WORKERS", DEFAULT_WORKERS))
    print(f"Ralph 5.1 (file backend, {workers} uvicorn workers): {seconds} s per phase, "
          f"{connections} connections ({batch_connections} for batches)", flush=True)
    single = ralph_phase(python, key, secret, workers, "single", statement(1), connections, seconds)
    batch = ralph_phase(python, key, secret, workers, "batch", [statement(i) for i in range(100)],
                        batch_connections, seconds)
    return {"single": single, "batch": batch}


def ours_cpu(figures: dict, phase: str) -> float:
    web, relay, projections, _rest = figures[f"{phase}_cpu_us_per_statement_web_relay_projections_rest"]
    return web + relay + projections


def against_ralph(figures: dict, key: str, secret: str, seconds: int, connections: int,
                  batch_connections: int) -> dict:
    """Ralph's figures under the same load, and learnstream's rates as multiples of them."""
    ralph = ralph_rates(key, secret, seconds, connections, batch_connections)
    single, batch = ralph["single"], ralph["batch"]

    def times(ours: float, theirs: float) -> float | None:
        return round(ours / theirs, 1) if theirs else None

    return {
        "ralph_single_statements_per_second": single["statements_per_second"],
        "ralph_single_p50_ms": single["p50_ms"], "ralph_single_p99_ms": single["p99_ms"],
        "ralph_single_errors": single["non_2xx"],
        "ralph_batch100_statements_per_second": batch["statements_per_second"],
        "ralph_batch100_p50_ms": batch["p50_ms"], "ralph_batch100_p99_ms": batch["p99_ms"],
        "ralph_batch100_errors": batch["non_2xx"],
        "ralph_workers": single["workers"],
        # CPU per statement depends far less than rates on what else the shared machine
        # runs: learnstream's web + relay + projections (it does more per statement:
        # index rows, outbox, Kafka, read models) against Ralph's uvicorn processes.
        "ralph_server_cpu_us_per_statement_single_batch": [single["server_cpu_us_per_statement"],
                                                           batch["server_cpu_us_per_statement"]],
        "times_ralph_cpu_single": times(single["server_cpu_us_per_statement"], ours_cpu(figures, "single")),
        "times_ralph_cpu_batch100": times(batch["server_cpu_us_per_statement"], ours_cpu(figures, "batch100")),
        "times_ralph_single": times(figures["single_statements_per_second"], single["statements_per_second"]),
        "times_ralph_batch100": times(figures["batch100_statements_per_second"], batch["statements_per_second"]),
        "times_ralph_goal": ">=10 single and batched",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--batch-connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--only", choices=("single", "batch"), default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench.peer needs wrk: make bench-deps")
    (VAR_DIR / "bench").mkdir(parents=True, exist_ok=True)
    if args.only:
        from bench.lrs import statement

        python = ensure_ralph()
        workers = args.workers or int(os.environ.get("RALPH_WORKERS", DEFAULT_WORKERS))
        body = statement(1) if args.only == "single" else [statement(i) for i in range(100)]
        ralph_phase(python, "bench", "bench-secret", workers, args.only, body,
                    args.connections if args.only == "single" else args.batch_connections, args.seconds)
        return
    ralph_rates("bench", "bench-secret", args.seconds, args.connections, args.batch_connections, args.workers)


if __name__ == "__main__":
    main()
