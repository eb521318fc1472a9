"""db.upsert_changed, how every enrolment restates its cohort and programme, on the real
database: it stores what is missing or different, and leaves a row stored as it is
alone, so writers side by side do not queue on its lock (PostgreSQL)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.progress import tables as t
from shared import db

pytestmark = pytest.mark.integration


def _cohort(cohort_id: str, name: str = "North") -> dict:
    # The key need not come first.
    return {"programme_id": "p1", "id": cohort_id, "name": name, "agency": "Customs", "province": None,
            "wave": 1, "accounts_issued_at": datetime(2026, 1, 1, 8, tzinfo=UTC),
            "activity_id": f"https://example.org/cohorts/{cohort_id}"}


@pytest.fixture
def engine(deployment):
    engine = db.create_engine(deployment.settings("progress").database_url)
    yield engine
    engine.dispose()


def _names(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(t.cohorts.c.id, t.cohorts.c.name)).all())


def test_it_stores_what_is_missing_or_changed(engine):
    with engine.begin() as conn:
        db.upsert_changed(conn, t.cohorts, [_cohort("c1"), _cohort("c2")], "id")
    with engine.begin() as conn:
        db.upsert_changed(conn, t.cohorts, [_cohort("c1"), _cohort("c2", "South"), _cohort("c3"),
                                            _cohort("c2", "West")], "id")  # of the same id, the last wins
    assert _names(engine) == {"c1": "North", "c2": "West", "c3": "North"}
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.cohorts).where(t.cohorts.c.id == "c1")).one()._asdict()
    assert stored == _cohort("c1")  # every column, the moment in UTC among them


def test_a_row_stored_as_it_is_takes_no_lock(engine):
    if db.is_sqlite(engine.url.render_as_string(hide_password=False)):
        pytest.skip("row locks: SQLite has one lock for the whole database")
    with engine.begin() as conn:
        db.upsert_changed(conn, t.cohorts, [_cohort("c1")], "id")
    holder = engine.connect()
    try:
        holder.begin()
        db.upsert_changed(holder, t.cohorts, [_cohort("c1")], "id")  # left open, as a long batch is
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            db.upsert_changed(conn, t.cohorts, [_cohort("c1")], "id")  # does not wait on the holder
        db.upsert(holder, t.cohorts, [_cohort("c1")], ["id"])  # the plain upsert takes the row's lock...
        with pytest.raises(sa.exc.OperationalError, match="LockNotAvailable|lock timeout"), engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            db.upsert_changed(conn, t.cohorts, [_cohort("c1", "South")], "id")  # ...which a change waits on
    finally:
        holder.rollback()
        holder.close()
    assert _names(engine) == {"c1": "North"}
