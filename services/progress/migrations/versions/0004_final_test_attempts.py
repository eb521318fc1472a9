"""final-test attempts counted from their start; attempts used and allowed per result

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import shared.db


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('final_test_attempts',
    sa.Column('statement_id', sa.String(length=36), nullable=False),
    sa.Column('learner_key', sa.String(length=64), nullable=False),
    sa.Column('activity_id', sa.String(length=500), nullable=False),
    sa.Column('attempt_id', sa.String(length=36), nullable=False),
    sa.Column('at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('statement_id')
    )
    with op.batch_alter_table('final_test_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_final_test_attempts_learner', ['learner_key', 'activity_id'], unique=False)
    with op.batch_alter_table('final_test_outcomes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('attempts_used', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('attempts_allowed', sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('final_test_outcomes', schema=None) as batch_op:
        batch_op.drop_column('attempts_allowed')
        batch_op.drop_column('attempts_used')
        batch_op.drop_column('attempt_id')
    with op.batch_alter_table('final_test_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_final_test_attempts_learner')
    op.drop_table('final_test_attempts')
