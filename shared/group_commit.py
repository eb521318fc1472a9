"""Group commit: concurrent requests in one process share one transaction and one flush.

Why: a commit costs a disk flush (and, on SQLite, the one write lock). With one commit
per request, a web process spends most of a small write waiting for its own commit,
and two processes queue behind each other's. Here each request hands its work to the
process's committer and waits; the committer writes everything that arrived while the
previous commit was flushing in one transaction. A request still returns only after
its own work is committed, so durability is unchanged (the technique PostgreSQL and
InnoDB use for their logs).

Failure stays per request: if a grouped transaction fails (one request's conflict, say),
it is rolled back and every request in it is retried alone, so each gets its own
answer and none is half-written; a database that cannot be reached fails the whole
group at once (each request then answers 503).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram
from sqlalchemy.engine import Connection, Engine

from shared import db
from shared.blocking import run_blocking

log = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result")

GROUP_SIZE = Histogram("learnstream_group_commit_requests", "Requests committed per grouped transaction",
                       ["writer"], buckets=(1, 2, 4, 8, 16, 32, 64, 128))


class _Pending(Generic[Job, Result]):
    __slots__ = ("job", "done", "result", "error")

    def __init__(self, job: Job):
        self.job = job
        self.done = threading.Event()
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommitter(Generic[Job, Result]):
    """`write(conn, jobs)` writes several jobs in the caller's transaction and returns
    one result per job; it must give the same results as writing each job alone."""

    def __init__(self, engine: Engine, write: Callable[[Connection, Sequence[Job]], list[Result]],
                 name: str, max_group: int = 64, size: Callable[[Job], int] = lambda job: 1,
                 max_size: int | None = None):
        """A group holds at most `max_group` jobs and, by `size`, about `max_size` units
        of work (statements, say): a huge transaction would hold SQLite's one write lock
        long enough to starve the relay and the projections."""
        self.engine = engine
        self.write = write
        self.name = name
        self.max_group = max_group
        self.size = size
        self.max_size = max_size
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: Job) -> Result:
        """Write `job` and return its result once committed (or raise its error)."""
        self._ensure_thread()
        pending: _Pending = _Pending(job)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _ensure_thread(self) -> None:
        # Started lazily and again after a fork: gunicorn forks workers, and a thread
        # does not survive into the child.
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, name=f"group-commit-{self.name}", daemon=True)
                self._pid = os.getpid()
                self._thread.start()

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            size = self.size(group[0].job)
            while len(group) < self.max_group and (self.max_size is None or size < self.max_size):
                try:
                    pending = self._queue.get_nowait()
                except queue.Empty:
                    break
                group.append(pending)
                size += self.size(pending.job)
            GROUP_SIZE.labels(self.name).observe(len(group))
            try:
                run_blocking(self._commit, group)
            except BaseException as exc:  # never leave a request waiting forever
                log.exception("group commit failed", extra={"writer": self.name})
                for pending in group:
                    if not pending.done.is_set():
                        pending.error = exc
                        pending.done.set()

    def _commit(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            self._commit_alone(group[0])
            return
        try:
            with self.engine.begin() as conn:
                results = self.write(conn, [p.job for p in group])
        except Exception as exc:
            if db.unavailable(exc):
                # Not one request's fault: every one would fail alone too, each after its
                # own timeout (a group of 64 waiting 64 connect timeouts in a row).
                for pending in group:
                    pending.error = exc
                    pending.done.set()
                return
            for pending in group:  # alone, so one request's failure is its own
                self._commit_alone(pending)
            return
        for pending, result in zip(group, results, strict=True):
            pending.result = result
            pending.done.set()

    def _commit_alone(self, pending: _Pending) -> None:
        try:
            with self.engine.begin() as conn:
                pending.result = self.write(conn, [pending.job])[0]
        except Exception as exc:
            pending.error = exc
        pending.done.set()
