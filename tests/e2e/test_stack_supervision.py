"""The local runner (`learnstream run`, shared/stack.py) as real processes (issue 12,
items 1 and 10): a part killed with SIGKILL comes back while the other services keep
answering; the runner's own death takes its parts with it; a port already taken is a
failure at once that names the port, with nothing left running."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from shared.config import REPO_ROOT
from shared.stack import PortInUse, Stack, free_port

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return " Z " not in state + " " and "zombie" not in state


def _part(runner: int, *words: str) -> int | None:
    found = [pid for pid in _children(runner) if all(word in _cmdline(pid) for word in words) and _alive(pid)]
    return found[0] if found else None


def _healthy(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


class _Watch(threading.Thread):
    """Asks a web tier's /healthz every 0.1 s; counts the answers that were not 200."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.asked, self.failed, self.done = url, 0, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.asked += 1
            self.failed += not _healthy(self.url, timeout=10)  # refused, not slow (a loaded machine)
            time.sleep(0.1)


def test_a_killed_part_is_restarted_and_the_rest_keep_serving(deployment, tmp_path):
    ports = {"enrollment": free_port(), "progress": free_port()}
    env = dict(os.environ, **deployment.env, LOG_LEVEL="WARNING", LEARNSTREAM_VAR_DIR=str(tmp_path / "var"),
               ENROLLMENT_PORT=str(ports["enrollment"]), PROGRESS_PORT=str(ports["progress"]))
    log = (tmp_path / "runner.log").open("w+")
    runner = subprocess.Popen([sys.executable, "-m", "shared.cli", "run", "enrollment", "progress"], env=env,
                              cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    started: list[int] = []
    try:
        _until(lambda: all(_healthy(url) for url in urls.values()), 120, "the stack answering")
        started = list(_children(runner.pid))
        # Enrollment: web, relay, projections (the cmi5 courses); progress: web, relay, projections.
        assert len(started) == 6
        watches = {name: _Watch(url) for name, url in urls.items()}
        for watch in watches.values():
            watch.start()

        # The progress relay, as in the campaign: kill -9.
        relay = _part(runner.pid, "worker progress", "--only relay")
        os.kill(relay, signal.SIGKILL)
        again = _until(lambda: (pid := _part(runner.pid, "worker progress", "--only relay")) != relay and pid,
                       15, "the relay restarted")
        time.sleep(1)
        assert _alive(again) and runner.poll() is None

        # The enrollment web tier's gunicorn master: it comes back on the same port.
        watches["enrollment"].done.set()
        web = _part(runner.pid, "gunicorn", "learnstream-enrollment")
        os.kill(web, signal.SIGKILL)
        _until(lambda: (pid := _part(runner.pid, "gunicorn", "learnstream-enrollment")) not in (None, web) and pid,
               15, "enrollment's gunicorn restarted")
        _until(lambda: _healthy(urls["enrollment"]), 30, "enrollment answering again")

        watches["progress"].done.set()
        for watch in watches.values():
            watch.join()
        # The other services kept answering throughout.
        assert watches["progress"].asked > 10 and watches["progress"].failed == 0
        assert watches["enrollment"].asked > 5 and watches["enrollment"].failed == 0
        log.seek(0)
        output = log.read()
        assert "progress relay exited with -9" in output and "progress relay restarted" in output
        assert "enrollment web exited with -9" in output

        # The runner's own death (kill -9: no handler runs) stops every part.
        everything = [pid for pid in _children(runner.pid)]
        everything += [child for pid in everything for child in _children(pid)]  # gunicorn's workers
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(10)
        _until(lambda: not any(_alive(pid) for pid in everything), 40, "every part gone with the runner")
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            runner.wait(60)
        for pid in started:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def test_a_stack_whose_port_is_taken_fails_at_once_naming_it(deployment, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack = Stack(env=dict(deployment.env, ENROLLMENT_PORT=str(port)), services=("enrollment",))
        began = time.monotonic()
        with pytest.raises(PortInUse) as refused:
            stack.start()
        assert time.monotonic() - began < 2
        assert f"port {port}" in str(refused.value) and "ENROLLMENT_PORT" in str(refused.value)
        assert stack.processes == []
        # The command, as a second `make run` beside the first: before any migration.
        env = dict(os.environ, **deployment.env, ENROLLMENT_PORT=str(port), LEARNSTREAM_VAR_DIR=str(tmp_path))
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "shared.cli", "run", "enrollment"], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and f"enrollment: port {port} is already in use" in done.stderr
        assert time.monotonic() - began < 20 and "preparing databases" not in done.stdout  # imports: ~4 s
