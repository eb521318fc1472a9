"""one vocabulary: an enrolment is "enrolled", not "active" (shared.vocabulary)

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


def upgrade() -> None:
    op.execute("UPDATE enrolments SET status = 'enrolled' WHERE status = 'active'")


def downgrade() -> None:
    op.execute("UPDATE enrolments SET status = 'active' WHERE status = 'enrolled'")
