"""SQLite's writers, queued: who writes next, across processes and threads.

SQLite lets one writer in at a time. shared.db gives every SQLite connection this class
(pysqlite's `factory`) and, before each write transaction's BEGIN IMMEDIATE, calls
`take_write_turn`; the turn ends with the commit or rollback.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3

from shared.blocking import run_blocking


class QueuedWriterConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions queue on a lock file.

    Why: SQLite lets one writer in at a time, and a writer that finds the database
    locked polls with sleeps that grow to 100 ms. Under many small writes from several
    processes (web workers, relay, projections) those sleeps left half the CPU idle and
    stretched the tail latency. Waiting on flock instead wakes the next writer the moment
    the previous one commits. SQLite's own lock still guards the data; this only orders
    the queue in front of it (anything not using it, such as the sqlite3 shell, falls
    back to the busy timeout).
    """

    lock_path: str | None = None
    priority: bool = False
    _lock_fd: int | None = None

    def take_write_turn(self) -> None:
        """Wait for this connection's turn to write.

        flock wakes waiters in no particular order, and under load the web tier and the
        projections always have a transaction waiting: the relay, whose few small writes
        must keep up (on Kafka within a second), lost the race for seconds at a time. So
        a priority writer (the relay) first closes a gate that other writers pass through
        on their way in: it waits for the transactions already queued, no more."""
        if self.lock_path is None or self._lock_fd is not None:
            return
        gate = os.open(f"{self.lock_path}.gate", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _flock(gate, fcntl.LOCK_EX if self.priority else fcntl.LOCK_SH)
            if not self.priority:
                os.close(gate)  # through the gate: queue with the others
                gate = None
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            _flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
        finally:
            if gate is not None:
                os.close(gate)

    def _end_write_turn(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_write_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_write_turn()

    def close(self) -> None:
        self._end_write_turn()
        super().close()


def _flock(fd: int, operation: int) -> None:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:  # wait, without the GIL and off any event loop
        run_blocking(fcntl.flock, fd, operation)
