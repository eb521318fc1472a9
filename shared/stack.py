"""Runs a whole learnstream on one machine: each service under gunicorn, and each
service's worker (relay + projections). Used by `learnstream run` (make run) and by
the benchmarks.

The runner supervises: a part that exits (a crash, a kill -9, an OOM kill) is started
again after a backoff that doubles per quick exit (1 s up to 30 s), and everything else
keeps serving meanwhile; only Ctrl-C, SIGTERM or the runner's own death stops the rest
(each part is told by the kernel when the runner dies). Deployments (compose,
Kubernetes) leave restarts to their orchestrator instead.
"""
from __future__ import annotations

import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared import bus, db
from shared.config import REPO_ROOT, VAR_DIR, Settings
from shared.service import available, load

log = logging.getLogger(__name__)

GUNICORN_CONF = REPO_ROOT / "deploy" / "gunicorn.conf.py"
# The first restart waits 1 s (time for a killed web tier's workers to let go of the
# port); each further exit within STABLE_AFTER_S doubles it, up to 30 s, so a part that
# cannot start (a bad setting) does not spin at full speed and flood the log.
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
STABLE_AFTER_S = 60.0
PR_SET_PDEATHSIG = 1
# The address the web tiers listen on: this machine only by default; a host of a cluster
# (deploy/cluster) serves other hosts, so it sets LEARNSTREAM_BIND_HOST=0.0.0.0.
DEFAULT_BIND_HOST = "127.0.0.1"


def ensure_credentials(env: dict) -> Path | None:
    """Operator credentials for a local run: the environment's, else a generated pair
    kept in var/credentials (never printed to logs)."""
    if env.get("LEARNSTREAM_CREDENTIALS"):
        return None
    path = VAR_DIR / "credentials"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"ops:{secrets.token_urlsafe(24)}\n")
        path.chmod(0o600)
    env["LEARNSTREAM_CREDENTIALS"] = path.read_text().strip()
    return path


class PortInUse(RuntimeError):
    """A service's port is held by another process: starting anyway would leave this
    stack without that service while its checks talk to whatever holds the port."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        # As gunicorn binds: SO_REUSEADDR, so only a listener (not TIME_WAIT) counts as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now (benchmarks and tests: never the 800x of `make run`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the runner dies, however it dies (a
    benchmark killed mid-run left its relay and projections running with no parent)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Part:
    """One supervised process of the stack: a service's web tier, relay or projections."""

    label: str
    argv: list[str]
    env: dict
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    restarts: int = 0

    def spawn(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=REPO_ROOT, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        self.restart_at = None


@dataclass
class Stack:
    env: dict = field(default_factory=lambda: dict(os.environ))
    services: tuple[str, ...] = field(default_factory=available)
    parts: list[Part] = field(default_factory=list)

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen]]:
        return [(part.label, part.process) for part in self.parts]

    def settings(self, service: str) -> Settings:
        return Settings.from_env(service, self.env)

    def prepare(self) -> None:
        """Migrate every database and create every topic once, before any worker starts."""
        for name in self.services:
            settings = self.settings(name)
            db.migrate(settings.database_url, load(name).migrations)
            bus.ensure_topics(settings, load(name).topics(settings))

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def check_ports(self) -> None:
        """PortInUse naming every service whose port another process listens on."""
        taken = [(name, self.settings(name).port) for name in self.services if not port_free(self.settings(name).port)]
        if taken:
            raise PortInUse("; ".join(
                f"{name}: port {port} is already in use (another learnstream, or another program, listens "
                f"there; set {name.upper()}_PORT to a free port)" for name, port in taken))

    def start(self) -> None:
        """Start every part and wait until every web tier answers; on any failure, stop
        what was started and raise (PortInUse naming the port, before anything starts)."""
        self.check_ports()
        try:
            self._start_parts()
            for name in self.services:
                self.wait_ready(name)
        except BaseException:
            self.stop()
            raise

    def _start_parts(self) -> None:
        python = sys.executable
        bind_host = self.env.get("LEARNSTREAM_BIND_HOST") or DEFAULT_BIND_HOST
        for name in self.services:
            settings = self.settings(name)
            metrics_dir = VAR_DIR / "prometheus" / name
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            web_env = dict(self.env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
            concurrency = ["--worker-class", self.env.get("GUNICORN_WORKER_CLASS") or load(name).web_worker_class]
            self._spawn(f"{name} web", [
                python, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "-b", f"{bind_host}:{settings.port}",
                *concurrency, "--name", f"learnstream-{name}", f"services.{name}.app:create_app()"], web_env)
            # The relay in a process of its own: it must keep up with the web tier's commits
            # (on Kafka within a second) whatever the projections are busy with.
            for part in load(name).worker_parts:
                # The web tier's metrics directory: its /metrics shows the worker's too
                # (a projection retrying or stopped, dead letters, the relay's failures).
                self._spawn(f"{name} {part}", [python, "-m", "shared.cli", "worker", name, "--only", part], web_env)

    def _spawn(self, label: str, argv: list[str], env: dict) -> None:
        part = Part(label, argv, env)
        part.spawn()
        self.parts.append(part)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.settings(service).port}"

    def wait_ready(self, service: str, timeout: float | None = None) -> None:
        # 60 s unless LEARNSTREAM_START_TIMEOUT_SECONDS says otherwise: a cluster host
        # sharing two busy cores with seven others took longer to import and bind.
        timeout = timeout or float(self.env.get("LEARNSTREAM_START_TIMEOUT_SECONDS") or 60)
        web = next(part for part in self.parts if part.label == f"{service} web")
        port = self.settings(service).port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if web.process.poll() is not None:  # e.g. it could not bind: do not wait out the timeout
                raise RuntimeError(f"{service} web exited with {web.process.returncode} before answering "
                                   f"on port {port}")
            try:
                with urllib.request.urlopen(f"{self.url(service)}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{service} did not answer /healthz on port {port} within {timeout}s")

    def supervise(self) -> None:
        """One round of supervision (the runner calls it a few times a second): note each
        part that exited and schedule its restart; start those whose backoff is over."""
        now = time.monotonic()
        for part in self.parts:
            if part.restart_at is None:
                code = part.process.poll()
                if code is None:
                    continue
                ran = now - part.started_at
                part.quick_exits = 1 if ran >= STABLE_AFTER_S else part.quick_exits + 1
                delay = min(RESTART_MAX_DELAY_S, RESTART_FIRST_DELAY_S * 2 ** (part.quick_exits - 1))
                part.restart_at = now + delay
                log.warning("%s exited with %s after %.1f s; restarting in %.0f s", part.label, code, ran, delay,
                            extra={"part": part.label, "returncode": code, "restart_in_seconds": delay})
            elif now >= part.restart_at:
                part.spawn()
                part.restarts += 1
                log.warning("%s restarted (restart %d)", part.label, part.restarts,
                            extra={"part": part.label, "restarts": part.restarts})

    def stop(self) -> None:
        for part in self.parts:
            if part.process.poll() is None:
                part.process.send_signal(signal.SIGTERM)
        for part in self.parts:
            try:
                part.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                part.process.kill()
                part.process.wait()
        self.parts.clear()
