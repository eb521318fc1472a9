"""one vocabulary (shared.vocabulary): an enrolment is "enrolled", not "active"; "failed"
is out of attempts (was "out_of_attempts"), and a learner whose attempts so far failed
with attempts left is "in_progress" (was "failed")

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:30:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ATTEMPTS_LEFT = ("EXISTS (SELECT 1 FROM test_rules r WHERE r.programme_id = learner_results.programme_id "
                  "AND learner_results.attempts_used < r.max_attempts)")


def upgrade() -> None:
    op.execute("UPDATE known_enrolments SET status = 'enrolled' WHERE status = 'active'")
    op.execute("UPDATE learner_results SET enrolment_status = 'enrolled' WHERE enrolment_status = 'active'")
    # Order matters: the old "failed" first, before the old "out_of_attempts" becomes "failed".
    op.execute(f"UPDATE learner_results SET status = 'in_progress', decided_at = NULL "
               f"WHERE status = 'failed' AND {_ATTEMPTS_LEFT}")
    op.execute("UPDATE learner_results SET status = 'failed' WHERE status = 'out_of_attempts'")


def downgrade() -> None:
    # decided_at of a learner with attempts left is not kept: a rebuild restores it.
    op.execute("UPDATE learner_results SET status = 'out_of_attempts' WHERE status = 'failed' "
               "AND EXISTS (SELECT 1 FROM test_rules r WHERE r.programme_id = learner_results.programme_id "
               "AND learner_results.attempts_used >= r.max_attempts)")
    op.execute("UPDATE learner_results SET enrolment_status = 'active' WHERE enrolment_status = 'enrolled'")
    op.execute("UPDATE known_enrolments SET status = 'active' WHERE status = 'enrolled'")
