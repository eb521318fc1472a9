"""Group commit (shared.group_commit) and SQLite's writer queue (shared.db), on a real
database: concurrent writers share transactions, yet each gets its own answer."""
from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shared import db
from shared.group_commit import GroupCommitter

pytestmark = pytest.mark.integration

probe = sa.Table("group_commit_probe", sa.MetaData(),
                 sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("writer", sa.Integer, nullable=False))


@pytest.fixture
def engine(deployment):
    engine = db.create_engine(deployment.settings("progress").database_url)
    probe.create(engine)
    yield engine
    engine.dispose()


def _rows(engine) -> dict[int, int]:
    with db.reading(engine) as conn:
        return dict(conn.execute(sa.select(probe.c.id, probe.c.writer)).all())


class Recorder:
    """A write function that inserts each job's ids and remembers the group sizes."""

    def __init__(self, first_commit_waits: threading.Event | None = None):
        self.groups: list[int] = []
        self.first_commit_waits = first_commit_waits

    def __call__(self, conn, jobs):
        self.groups.append(len(jobs))
        if self.first_commit_waits is not None:
            self.first_commit_waits.wait(10)  # hold the first transaction open while others queue
            self.first_commit_waits = None
        conn.execute(probe.insert(), [{"id": i, "writer": writer} for writer, ids in jobs for i in ids])
        return [len(ids) for _, ids in jobs]


def test_concurrent_jobs_share_a_commit_and_each_gets_its_own_result(engine):
    release = threading.Event()
    write = Recorder(first_commit_waits=release)
    committer = GroupCommitter(engine, write, name="test")
    jobs = [(writer, [writer * 10 + k for k in range(writer % 3 + 1)]) for writer in range(40)]
    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(committer.submit, job) for job in jobs]
        time.sleep(0.5)  # the first job holds its transaction; the other 39 queue behind it
        release.set()
        results = [f.result(timeout=30) for f in futures]
    assert results == [len(ids) for _, ids in jobs]
    assert _rows(engine) == {i: writer for writer, ids in jobs for i in ids}
    assert max(write.groups) > 1, write.groups  # they shared transactions
    assert sum(write.groups) == len(jobs)  # no job was written twice


def test_a_failing_job_fails_alone_and_leaves_nothing_behind(engine):
    with engine.begin() as conn:
        conn.execute(probe.insert().values(id=999, writer=0))
    release = threading.Event()
    committer = GroupCommitter(engine, Recorder(first_commit_waits=release), name="test")
    good = [(writer, [writer]) for writer in range(1, 20)]
    bad = (77, [500, 999])  # 500 is new, 999 clashes: the job must not half-happen
    with ThreadPoolExecutor(21) as pool:
        futures = [pool.submit(committer.submit, job) for job in good]
        time.sleep(0.3)
        failing = pool.submit(committer.submit, bad)
        time.sleep(0.3)
        release.set()
        assert [f.result(timeout=30) for f in futures] == [1] * len(good)
        with pytest.raises(IntegrityError):
            failing.result(timeout=30)
    rows = _rows(engine)
    assert 500 not in rows
    assert rows == {999: 0, **{writer: writer for writer, _ in good}}


def test_sqlite_writers_queue_on_the_lock_file_only_while_writing(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    db.ensure_database(url)
    engine = db.create_engine(url)
    probe.create(engine)
    lock_path = f"{tmp_path / 'queue.sqlite'}-writer.lock"

    def lock_is_free() -> bool:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with db.reading(engine) as conn:  # readers never queue
        conn.execute(sa.select(probe.c.id)).all()
        assert lock_is_free()
    with engine.begin() as conn:
        conn.execute(probe.insert().values(id=1, writer=1))
        assert not lock_is_free()
    assert lock_is_free()  # released at commit
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(probe.insert().values(id=1, writer=2))
    assert lock_is_free()  # and at rollback

    # A second writer waits for the first to commit, then goes on at once.
    order = []
    with engine.begin() as conn:
        conn.execute(probe.insert().values(id=2, writer=1))
        other = threading.Thread(target=lambda: _insert_after(engine, order))
        other.start()
        time.sleep(0.3)
        order.append("first commits")
    other.join(10)
    assert order == ["first commits", "second wrote"]
    engine.dispose()


def _insert_after(engine, order):
    with engine.begin() as conn:
        conn.execute(probe.insert().values(id=3, writer=2))
    order.append("second wrote")


def test_a_database_that_cannot_be_reached_fails_the_group_at_once():
    """Retrying each job alone would take one connect timeout per job, in a row: a group of
    64 behind a server that does not answer waited 64 timeouts before the last one answered."""
    with socket.socket() as sock:  # a port nothing listens on: every connect is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = db.create_engine(f"postgresql+psycopg://nobody:none@127.0.0.1:{port}/none")
    attempts = []

    @sa.event.listens_for(engine, "do_connect")
    def _count(*_):
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(0.5)  # the first job's connect is slow: the others gather in one group

    committer = GroupCommitter(engine, Recorder(), name="test")
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(committer.submit, (writer, [writer])) for writer in range(8)]
        errors = [f.exception(timeout=30) for f in futures]
    assert all(error is not None and db.unavailable(error) for error in errors), errors
    assert len(attempts) <= 3, attempts  # the first job alone, then the group: not once more per job
    engine.dispose()
