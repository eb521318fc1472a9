"""programmes.cmi5_course: the imported course that delivers a programme, if any

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:00:00.000000

programme.defined says it (enrollment, since the course could be attached); the learner
table reads each AU's state through it. A programme projected before this migration has
none until `learnstream rebuild progress` reads its statements again.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cmi5_course', sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_column('cmi5_course')
