"""A PostgreSQL server of a test's own (deploy/postgres/pg.sh on a free port and a data
directory of its own), for the tests that stop and start the database: stopping the
server every other test shares would fail them."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from shared.stack import free_port
from tests.support.brokers import REPO

PG_SCRIPT = REPO / "deploy" / "postgres" / "pg.sh"


class PrivatePostgres:
    def __init__(self, data_dir: Path | None = None):
        # Not under pytest's tmp_path by default: pytest deletes all but the newest three
        # session directories, and a session starting meanwhile (the machine is shared)
        # would delete a running server's data directory, leaving a server pg.sh cannot stop.
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="learnstream-pg-")) / "pg"
        self.port = free_port()
        self.url = ""

    def _run(self, action: str) -> str:
        env = dict(os.environ, PG_PORT=str(self.port), PG_DATA_DIR=str(self.data_dir))
        done = subprocess.run(["bash", str(PG_SCRIPT), action], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pg.sh {action} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def start(self) -> str:
        """Start (again) on the same port; returns the URL of its `learnstream` database."""
        self.url = self._run("start")
        return self.url

    def stop(self) -> None:
        self._run("stop")
