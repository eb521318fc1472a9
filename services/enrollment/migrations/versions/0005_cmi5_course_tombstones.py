"""cmi5_courses.removed_at: a removed course stays as a tombstone

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:00:00.000000

The content topic was keyed by the operator before it was keyed by the course, so a
course's import and removal may sit on two partitions and be read in either order; with
the removal kept, an import read after it changes nothing. Courses removed before this
migration were deleted: their rows come back as tombstones on `learnstream rebuild
enrollment`.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import shared.db


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('cmi5_courses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', shared.db.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cmi5_courses', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
