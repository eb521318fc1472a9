"""The one vocabulary (shared.vocabulary) reaches data stored before it: each service's
migration rewrites the old words in place, on the database the suite runs on."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from shared import db
from tests.support.migrations import own_database, seeded_at_then_upgraded

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def test_enrollment_stores_enrolled_not_active(deployment):
    url = own_database(deployment, "enrollment_vocab")
    common = dict(programme_id="p1", cohort_id="c1", name="Ana", email=None, account_home_page=None,
                  account_name=None, organisation="Tax office", enrolled_at=T0, deadline=T0,
                  withdrawal_reason=None)
    engine = seeded_at_then_upgraded(url, "enrollment", "0001", {
        "programmes": [dict(id="p1", code="DS1", title="Digital skills", required_modules=["https://x.test/m1"],
                            final_test="https://x.test/t", window_days=10, activity_id="https://x.test/p1",
                            created_at=T0)],
        "cohorts": [dict(id="c1", programme_id="p1", name="Wave 1", agency="Tax office", province="North", wave=1,
                         accounts_issued_at=T0, activity_id="https://x.test/c1", created_at=T0)],
        "enrolments": [
        common | {"id": "e1", "learner_key": "k1", "status": "active", "withdrawn_at": None},
        common | {"id": "e2", "learner_key": "k2", "status": "withdrawn", "withdrawn_at": T0}]})
    try:
        with engine.connect() as conn:
            assert dict(conn.execute(sa.text("SELECT id, status FROM enrolments")).all()) == {
                "e1": "enrolled", "e2": "withdrawn"}
    finally:
        engine.dispose()
        db.drop_database(url)


def test_assessment_failed_means_out_of_attempts_after_the_migration(deployment):
    url = own_database(deployment, "assessment_vocab")

    def result(registration, status, used):
        return dict(registration=registration, programme_id="p1", cohort_id="c1", learner_key=f"k-{registration}",
                    enrolment_status="active", attempts_used=used, best_score=0.1, latest_score=0.1,
                    counted_score=0.1, status=status, decided_at=T0)

    engine = seeded_at_then_upgraded(url, "assessment", "0001", {
        "test_rules": [dict(programme_id="p1", max_attempts=2, counting="best", pass_mark=0.7, revision=1,
                            defined_at=T0)],
        "learner_results": [result("r-left", "failed", 1), result("r-out", "out_of_attempts", 2),
                            result("r-pass", "passed", 1)]})
    try:
        with engine.connect() as conn:
            rows = {r.registration: r for r in conn.execute(sa.text(
                "SELECT registration, status, enrolment_status, decided_at FROM learner_results"))}
        assert {k: r.status for k, r in rows.items()} == {"r-left": "in_progress", "r-out": "failed",
                                                          "r-pass": "passed"}
        assert {r.enrolment_status for r in rows.values()} == {"enrolled"}
        assert rows["r-left"].decided_at is None and rows["r-out"].decided_at is not None
    finally:
        engine.dispose()
        db.drop_database(url)
