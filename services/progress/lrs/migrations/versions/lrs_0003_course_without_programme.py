"""cmi5_courses.programme_id goes: a programme names its course now (enrollment)

Revision ID: lrs_0003
Revises: lrs_0002
Create Date: 2026-12-02 09:40:00.000000

The import took a programme id as a label it never checked. Programmes are
enrollment's: it learns each imported course from learnstream.content.v1 and a
programme is defined from, or attached to, a course there (its `cmi5_course`).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'lrs_0003'
down_revision: Union[str, Sequence[str], None] = 'lrs_0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('cmi5_courses', schema=None) as batch_op:
        batch_op.drop_index('ix_cmi5_courses_programme_id')
        batch_op.drop_column('programme_id')


def downgrade() -> None:
    with op.batch_alter_table('cmi5_courses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('programme_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_cmi5_courses_programme_id', ['programme_id'], unique=False)
