"""db's bulk writes on the real database: insert_new_fast (the projections' claims and
facts) skips what is there, returns only what went in, and stores values in the very
form SQLAlchemy's own inserts do, so a query with a bound value finds both. On
PostgreSQL these, insert_ignoring_duplicates, upsert, insert_many_fast and update_many send
one array per column (unnest) and `among` one array for an IN list: the rows must come out as
SQLAlchemy's own executemany leaves them, whatever the values."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

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


def test_array_writes_store_what_sqlalchemy_would_with_awkward_values(deployment):
    """Nones, an int where a float goes, a timestamp with another zone, a key twice in one
    batch, thousands of rows: the same stored rows as SQLAlchemy's executemany gives."""
    engine = db.create_engine(deployment.settings("progress").database_url)
    outcomes = t.final_test_outcomes
    rows = [{"statement_id": f"o{i}", "learner_key": f"k{i % 7}", "activity_id": "https://example.org/test",
             "success": i % 2 == 0, "score": [None, 1, 0.5][i % 3],
             "at": datetime(2026, 1, 1, 8, tzinfo=UTC) + timedelta(seconds=i), "attempt_id": None,
             "attempts_used": i if i % 5 else None, "attempts_allowed": 3} for i in range(2500)]
    rows[1]["at"] = rows[1]["at"].astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    try:
        with engine.begin() as conn:
            db.insert_ignoring_duplicates(conn, outcomes, rows + rows[:3], ["statement_id"])
            db.insert_ignoring_duplicates(conn, outcomes, [{**rows[0], "score": 0.99}], ["statement_id"])  # kept
            db.upsert(conn, outcomes, [{**rows[1], "score": 2, "success": True}], ["statement_id"],
                      update=["score"])  # only the score changes
            db.insert_ignoring_duplicates(conn, t.learner_activity_days,
                                          [{"learner_key": "k1", "day": date(2026, 1, 1)}] * 2, ["learner_key", "day"])
            # Nothing to update: rows of key columns only, or update=[] (not "every column").
            db.upsert(conn, t.learner_activity_days, [{"learner_key": "k1", "day": date(2026, 1, 1)},
                                                      {"learner_key": "k2", "day": date(2026, 1, 2)}],
                      ["learner_key", "day"])
            db.upsert(conn, outcomes, [{**rows[2], "score": 0.25}, {**rows[0], "statement_id": "o-new"}],
                      ["statement_id"], update=[])
            # update_many: the named columns of the rows by key; an int in a float column,
            # another zone, a None; a key with no row changes nothing.
            db.update_many(conn, outcomes, "statement_id", [
                {"statement_id": "o3", "score": 1, "at": datetime(2026, 2, 1, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")),
                 "attempts_used": None},
                {"statement_id": "o6", "score": None, "at": datetime(2026, 2, 2, tzinfo=UTC), "attempts_used": 7},
                {"statement_id": "absent", "score": 0.5, "at": AT, "attempts_used": 1}])
            db.update_many(conn, outcomes, "statement_id", [])
        with engine.connect() as conn:
            stored = {r.statement_id: r for r in conn.execute(sa.select(outcomes))}
            assert len(stored) == 2501
            assert stored["o0"].score is None and stored["o0"].success is True
            assert stored["o1"].score == 2.0 and stored["o1"].success is False  # the upsert's other columns kept
            assert stored["o1"].at == datetime(2026, 1, 1, 8, 0, 1, tzinfo=UTC)
            assert stored["o4"].score == 1.0 and stored["o5"].attempts_used is None
            assert stored["o2499"].attempts_used == 2499
            assert stored["o2"].score == 0.5 and stored["o-new"].learner_key == "k0"  # update=[]: kept, added
            assert (stored["o3"].score, stored["o3"].at, stored["o3"].attempts_used, stored["o3"].success) == (
                1.0, datetime(2026, 2, 1, 2, tzinfo=UTC), None, False)
            assert (stored["o6"].score, stored["o6"].at, stored["o6"].attempts_used) == (
                None, datetime(2026, 2, 2, tzinfo=UTC), 7)
            assert "absent" not in stored
            # among: an IN list of any size, and of none.
            wanted = [f"o{i}" for i in range(0, 2500, 3)]
            found = conn.scalars(sa.select(outcomes.c.statement_id).where(db.among(conn, outcomes.c.statement_id,
                                                                                   wanted))).all()
            assert sorted(found) == sorted(wanted)
            assert conn.scalars(sa.select(outcomes.c.statement_id)
                                .where(db.among(conn, outcomes.c.statement_id, []))).all() == []
            assert sorted(conn.execute(sa.select(t.learner_activity_days)).all()) == [
                ("k1", date(2026, 1, 1)), ("k2", date(2026, 1, 2))]
    finally:
        engine.dispose()
