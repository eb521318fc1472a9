"""learner_activities: per-learner, per-activity sums of learner_statements (issue 11)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00.000000

The table is filled from the statements already stored, so a database upgraded in place
goes on incrementally from where it stands (the same sums services.progress.facts keeps).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import shared.db


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('learner_activities',
    sa.Column('learner_key', sa.String(length=64), nullable=False),
    sa.Column('activity_id', sa.String(length=500), nullable=False),
    sa.Column('first_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', shared.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('milliseconds', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('learner_key', 'activity_id')
    )
    # The sums of the statements stored so far, as services.progress.facts keeps them
    # (rebuild_activities): milliseconds half up, the earliest completion.
    bind = op.get_bind()
    ms = ("FLOOR(seconds * 1000 + 0.5)" if bind.dialect.name == "postgresql"
          else "CAST(seconds * 1000 + 0.5 AS INTEGER)")
    bind.execute(sa.text(
        "INSERT INTO learner_activities (learner_key, activity_id, first_at, last_at, completed_at, milliseconds) "
        "SELECT learner_key, activity_id, MIN(at), MAX(at), MIN(CASE WHEN completed THEN at END), "
        f"CAST(SUM({ms}) AS BIGINT) FROM learner_statements GROUP BY learner_key, activity_id"))


def downgrade() -> None:
    op.drop_table('learner_activities')
