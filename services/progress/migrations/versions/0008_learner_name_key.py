"""learner_enrolments.name_key: the key the learner list is ordered by name with

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 04:30:00.000000

Vietnamese name order (shared.name_order) cannot be said in SQL portably, so each row
keeps its name's sort key (bytes: SQLite and PostgreSQL compare them alike) and the list
pages by it. Rows already there get theirs here; a change of the key's rules needs a
migration that recomputes them the same way.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from shared.name_order import sort_key


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('learner_enrolments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT registration, name FROM learner_enrolments")).all()
    update = sa.text("UPDATE learner_enrolments SET name_key = :key WHERE registration = :registration")
    for start in range(0, len(rows), 1000):
        bind.execute(update, [{"key": sort_key(name), "registration": registration}
                              for registration, name in rows[start:start + 1000]])


def downgrade() -> None:
    with op.batch_alter_table('learner_enrolments', schema=None) as batch_op:
        batch_op.drop_column('name_key')
