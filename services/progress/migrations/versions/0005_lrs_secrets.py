"""LRS secrets (moved to the LRS's branch: lrs_0001)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:10:00.000000

"""
from typing import Sequence, Union


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Nothing any more: this revision created lrs_secrets until the LRS got its own
    branch (services/progress/lrs/migrations/versions/lrs_0001 creates it now, and finds
    it already there in a database made before the move). Kept so that the chain, and
    every database stamped with it, stays as it was."""


def downgrade() -> None:
    pass
