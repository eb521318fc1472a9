"""accounts (shared.account_tables) and the audit trail (shared.audit)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 04:10:04.788425

"""
from typing import Sequence, Union

from shared import account_migration


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    account_migration.upgrade()


def downgrade() -> None:
    account_migration.downgrade()
