"""What the LRS is given: its database, its writer, where its statements go, its secret.

Made once per app (services.progress.app) and passed to every handler, so that nothing
in the LRS looks anything up on Flask's `current_app`: the statement POSTs that skip
Flask (web.StatementIngest) need no app context, and a test can build an `Lrs` around
any engine.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.progress.lrs import cursors, store
from services.progress.lrs.auth import Client
from shared.auth import AccountDirectory
from shared.group_commit import GroupCommitter


class SessionHook(Protocol):
    """Credentials the LRS does not issue itself: a cmi5 LMS's session tokens
    (services.progress.cmi5.lms). The LRS asks it whether a key is one of its own, to
    authenticate it, what the credential may reach, and to judge and store what it sends."""

    def owns(self, key: str) -> bool: ...

    def authenticate(self, key: str, secret: str) -> Client | None: ...

    def admit(self, client: Client, method: str, path: str, params: dict[str, str]) -> None: ...

    def store(self, client: Client, statements: list[dict], prepare: Callable[[], store.Batch],
              parts: dict[str, tuple[str, bytes]], method: str) -> list[str]: ...


@dataclass(frozen=True)
class Lrs:
    engine: Engine
    # POSTed statements of concurrent requests share a commit (shared.group_commit).
    writer: GroupCommitter
    # The database's outbox (services.progress.tables.outbox) and the topic its records go
    # to (learnstream.lrs.v1): the relay publishes what the LRS stages there.
    outbox: sa.Table
    topic: str
    # LRS_CURSOR_SECRET, or "" for the key kept in the database (cursors.py).
    cursor_secret: str = ""
    sessions: SessionHook | None = None
    # The accounts every service checks (shared.auth): an LMS client's account is an LRS
    # client too, with its xAPI scopes (auth.authenticate).
    accounts: AccountDirectory | None = None

    @classmethod
    def create(cls, engine: Engine, *, outbox: sa.Table, topic: str, cursor_secret: str = "",
               sessions: SessionHook | None = None, accounts: AccountDirectory | None = None) -> Lrs:
        """The LRS of one app: one group committer per process and database."""
        write = functools.partial(store.store_requests, outbox_table=outbox, topic=topic)
        writer = GroupCommitter(engine, write, name="lrs", size=lambda job: len(job[0].rows),
                                max_size=store.CHUNK)
        return cls(engine=engine, writer=writer, outbox=outbox, topic=topic, cursor_secret=cursor_secret,
                   sessions=sessions, accounts=accounts)

    def cursor_key(self) -> bytes:
        """The key `more` page tokens are signed with (cursors.signing_key)."""
        return cursors.signing_key(self.engine, self.cursor_secret)
