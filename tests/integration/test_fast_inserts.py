"""db.insert_new_fast, the projections' raw multi-row INSERT (claims and facts), on the
real database: it skips what is there, returns only what went in, and stores values in
the very form SQLAlchemy's own inserts do, so a query with a bound value finds both."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.progress import facts
from services.progress import tables as t
from shared import db

pytestmark = pytest.mark.integration

AT = datetime(2026, 1, 1, tzinfo=UTC)  # whole seconds: where sqlite3's own adapter writes another form


def _fact(statement_id: str, at: datetime = AT) -> dict:
    return {"statement_id": statement_id, "learner_key": "k" * 32, "activity_id": "https://example.org/m1",
            "at": at, "completed": True, "seconds": 1.5}


def test_fast_inserts_skip_what_is_there_and_store_what_sqlalchemy_would(deployment):
    engine = db.create_engine(deployment.settings("progress").database_url)
    try:
        with engine.begin() as conn:
            conn.execute(t.learner_statements.insert(), [_fact("by-sqlalchemy")])
            inserted = facts._insert_new(conn, t.learner_statements,
                                         [_fact("fast"), _fact("by-sqlalchemy"), _fact("fast")])
            assert [row["statement_id"] for row in inserted] == ["fast"]  # once, and not the one there
            claimed = db.insert_new_fast(conn, t.processed_statements, ["statement_id"],
                                         [(f"s{i}",) for i in range(1200)], "statement_id")  # three INSERTs
            assert sorted(claimed) == sorted(f"s{i}" for i in range(1200))
            assert db.insert_new_fast(conn, t.processed_statements, ["statement_id"], [("s7",), ("new",)],
                                      "statement_id") == ["new"]
        with engine.connect() as conn:
            found = conn.scalars(sa.select(t.learner_statements.c.statement_id)
                                 .where(t.learner_statements.c.at == AT)).all()
            assert sorted(found) == ["by-sqlalchemy", "fast"]
            row = conn.execute(sa.select(t.learner_statements).where(
                t.learner_statements.c.statement_id == "fast")).one()
            assert (row.at, row.completed, row.seconds) == (AT, True, 1.5)
    finally:
        engine.dispose()
