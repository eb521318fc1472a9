"""Targets' passwords sealed at rest (shared.secrets), with room for the sealed form.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 04:20:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from shared.config import Settings
from shared.secrets import SEALED

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

targets = sa.table("targets", sa.column("id", sa.String), sa.column("password", sa.String))


def upgrade() -> None:
    # A password of 1,000 characters (the API's limit) seals to about 1,420.
    with op.batch_alter_table("targets") as batch:
        batch.alter_column("password", type_=sa.String(2000), existing_type=sa.String(1000),
                           existing_nullable=False)
    conn = op.get_bind()
    plain = conn.execute(sa.select(targets.c.id, targets.c.password).where(
        targets.c.password != "", ~targets.c.password.startswith(SEALED))).all()
    if plain:
        # The same key the service will open them with: this process's settings.
        box = Settings.from_env("forwarding").secret_box()
        for target_id, password in plain:
            conn.execute(targets.update().where(targets.c.id == target_id).values(password=box.seal(password)))


def downgrade() -> None:
    conn = op.get_bind()
    box = Settings.from_env("forwarding").secret_box()
    for target_id, password in conn.execute(sa.select(targets.c.id, targets.c.password)).all():
        conn.execute(targets.update().where(targets.c.id == target_id).values(password=box.open(password)))
    with op.batch_alter_table("targets") as batch:
        batch.alter_column("password", type_=sa.String(1000), existing_type=sa.String(2000),
                           existing_nullable=False)
