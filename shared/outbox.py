"""The transactional outbox (docs/architecture.md, Writing).

A command appends its statements to the `outbox` table in the same transaction as its
state change; the relay (shared.relay) publishes them afterwards. So a committed write
always reaches the bus, and a failed write never does.
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import xapi
from shared.consumer import replaying
from shared.db import UtcDateTime
from shared.events import Event

# SQLite only autoincrements an INTEGER PRIMARY KEY.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def define_outbox(metadata: sa.MetaData) -> sa.Table:
    table = sa.Table(
        "outbox", metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        # Per-row, not a high-water mark: ids are not handed out in commit order, so
        # "everything below N is published" would skip a slow transaction's rows.
        sa.Column("published_at", UtcDateTime(), nullable=True),
    )
    sa.Index(
        "ix_outbox_unpublished", table.c.id,
        postgresql_where=table.c.published_at.is_(None),
        sqlite_where=table.c.published_at.is_(None),
    )
    return table


def append(conn: Connection, outbox: sa.Table, topic: str, events: Iterable[Event]) -> int:
    """Stage events for publishing, inside the caller's transaction."""
    now = xapi.utc_now()
    rows = [
        {"topic": topic, "key": event.key, "event_type": event.type,
         "payload": xapi.encode(event.statement), "created_at": now}
        for event in events
    ]
    if not rows:
        return 0
    if replaying(conn):
        # A rebuild replays what the live run did, which published its statements then;
        # a handler that gets here during one is a bug, and must not reach the bus.
        raise RuntimeError("a projection replaying the topics tried to publish; check replaying(conn) first")
    conn.execute(outbox.insert(), rows)
    return len(rows)
