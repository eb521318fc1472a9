"""the cmi5 courses enrollment learns from learnstream.content.v1, a programme's course,
and the consumer's offsets and processed statements

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:50:00.000000

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
    op.create_table('cmi5_courses',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('course_iri', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('required_modules', sa.JSON(), nullable=False),
    sa.Column('imported_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('consumer_offsets',
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('partition', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('next_offset', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('topic', 'partition')
    )
    op.create_table('processed_statements',
    sa.Column('statement_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('statement_id')
    )
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cmi5_course', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_column('cmi5_course')
    op.drop_table('processed_statements')
    op.drop_table('consumer_offsets')
    op.drop_table('cmi5_courses')
