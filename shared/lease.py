"""One active relay per service database, however many workers run.

Two relays publishing the same outbox would both publish every row (duplicates are
harmless) and could interleave a learner's statements out of order (not harmless). The
lease is held for the relay's lifetime and released by the operating system or the
database when its process dies, so a standby worker takes over without a timeout:
a PostgreSQL session advisory lock, or an exclusive flock next to the SQLite file.
"""
from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from shared import db


class RelayLease:
    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self._held = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def try_acquire(self) -> bool:
        if self._held is not None:
            return True
        if db.is_sqlite(self.engine):
            path = Path(f"{make_url(str(self.engine.url)).database}.{self.name}.lock")
            handle = path.open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._held = handle
            return True
        key = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big", signed=True)
        conn = self.engine.connect()
        if conn.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
            conn.commit()  # the lock is the session's; the connection stays open to hold it
            self._held = conn
            return True
        conn.close()
        return False

    def holds(self) -> bool:
        """Acquire the lease if it is free, and check that a lease held is still held: a
        PostgreSQL session lock ends with its connection (a database restart, a network
        cut), and another relay may then have taken it. Raises if the database is away."""
        if isinstance(self._held, sa.Connection):
            try:
                self._held.execute(sa.text("SELECT 1"))
                self._held.rollback()
            except Exception:
                self.release()
                raise
        return self.try_acquire()

    def release(self) -> None:
        if self._held is None:
            return
        held, self._held = self._held, None
        try:
            if isinstance(held, sa.Connection):
                # End the session itself: a pooled connection would keep the lock alive.
                held.invalidate()
            held.close()
        except Exception:  # a connection to a database that went away may fail to close
            pass
