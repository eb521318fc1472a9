"""The transactional outbox (docs/architecture.md, Writing).

A command appends its statements to the `outbox` table in the same transaction as its
state change; the relay (shared.relay) publishes them afterwards. So a committed write
always reaches the bus, and a failed write never does.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import db, xapi
from shared.consumer import replaying
from shared.db import UtcDateTime
from shared.events import Event, KeyedEvent

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


def append(conn: Connection, outbox: sa.Table, topic: str, events: Iterable[Event | KeyedEvent]) -> int:
    """Stage events for publishing, inside the caller's transaction."""
    return append_encoded(conn, outbox, [(topic, event.key, event.type, xapi.encode(event.statement))
                                         for event in events])


def append_encoded(conn: Connection, outbox: sa.Table, records: Sequence[tuple[str, str, str, bytes]]) -> int:
    """Stage records already encoded, (topic, key, event type, payload) each, inside the
    caller's transaction: `append`'s own path, open to a writer that encodes before its
    transaction begins so as to hold the write lock for the inserts alone (the LRS).
    One multi-row INSERT straight to the driver: SQLAlchemy's per-row parameter
    processing cost more than the insert on the LRS's hot path (db.insert_many_fast).
    created_at is taken here, in the transaction: commit to topic is measured from it."""
    if not records:
        return 0
    if replaying(conn):
        # A rebuild replays what the live run did, which published its statements then;
        # a handler that gets here during one is a bug, and must not reach the bus.
        raise RuntimeError("a projection replaying the topics tried to publish; check replaying(conn) first")
    created_at = db.to_driver(conn, outbox.c.created_at)(xapi.utc_now())
    db.insert_many_fast(conn, outbox, _COLUMNS, [(*record, created_at) for record in records])
    return len(records)


_COLUMNS = ["topic", "key", "event_type", "payload", "created_at"]
