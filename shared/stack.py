"""Runs a whole learnstream on one machine: each service under gunicorn, and each
service's worker (relay + projections). Used by `learnstream run` (make run) and by
the benchmarks."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared import bus, db
from shared.config import REPO_ROOT, VAR_DIR, Settings
from shared.service import available, load
from shared.worker import PARTS

GUNICORN_CONF = REPO_ROOT / "deploy" / "gunicorn.conf.py"


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


@dataclass
class Stack:
    env: dict = field(default_factory=lambda: dict(os.environ))
    services: tuple[str, ...] = field(default_factory=available)
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def settings(self, service: str) -> Settings:
        return Settings.from_env(service, self.env)

    def prepare(self) -> None:
        """Migrate every database and create every topic once, before any worker starts."""
        for name in self.services:
            settings = self.settings(name)
            db.migrate(settings.database_url, load(name).migrations)
            bus.ensure_topics(settings, load(name).topics(settings))

    def start(self) -> None:
        python = sys.executable
        for name in self.services:
            settings = self.settings(name)
            metrics_dir = VAR_DIR / "prometheus" / name
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            web_env = dict(self.env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
            concurrency = ["--worker-class", self.env.get("GUNICORN_WORKER_CLASS") or load(name).web_worker_class]
            self._spawn(f"{name} web", [
                python, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "-b", f"127.0.0.1:{settings.port}",
                *concurrency, "--name", f"learnstream-{name}", f"services.{name}.app:create_app()"], web_env)
            # The relay in a process of its own: it must keep up with the web tier's commits
            # (on Kafka within a second) whatever the projections are busy with.
            for part in PARTS:
                # The web tier's metrics directory: its /metrics shows the worker's too
                # (a projection retrying or stopped, dead letters, the relay's failures).
                self._spawn(f"{name} {part}", [python, "-m", "shared.cli", "worker", name, "--only", part], web_env)
        for name in self.services:
            self.wait_ready(name)

    def _spawn(self, label: str, argv: list[str], env: dict) -> None:
        self.processes.append((label, subprocess.Popen(argv, env=env, cwd=REPO_ROOT)))

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.settings(service).port}"

    def wait_ready(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url(service)}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{service} did not answer /healthz within {timeout}s")

    def failed(self) -> str | None:
        for label, process in self.processes:
            if process.poll() is not None:
                return f"{label} exited with {process.returncode}"
        return None

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
