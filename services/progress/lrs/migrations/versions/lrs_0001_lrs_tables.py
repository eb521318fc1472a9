"""the LRS's tables, on a branch of their own

Revision ID: lrs_0001
Revises:
Create Date: 2026-12-02 01:10:00.000000

The base of the LRS's branch (label lrs) in the progress database. Until this branch
existed, progress's own revisions 0002 and 0005 created these tables; a database made
then already has them (and their rows), so each is created only where it is missing.
The schema is the one 0002 and 0005 made, so a fresh database and an upgraded one end
alike.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import shared.db


# revision identifiers, used by Alembic.
revision: str = 'lrs_0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = ('lrs',)
depends_on: Union[str, Sequence[str], None] = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _absent(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _absent('lrs_activities'):
        op.create_table('lrs_activities',
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('id', sa.Text(), nullable=False),
        sa.Column('definition', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('hash')
        )
    if _absent('lrs_attachments'):
        op.create_table('lrs_attachments',
        sa.Column('sha2', sa.String(length=128), nullable=False),
        sa.Column('content_type', sa.String(length=255), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('sha2')
        )
    if _absent('lrs_credentials'):
        op.create_table('lrs_credentials',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('secret_hash', sa.String(length=200), nullable=False),
        sa.Column('scopes', sa.String(length=500), nullable=False),
        sa.Column('created_at', shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key')
        )
    if _absent('lrs_documents'):
        op.create_table('lrs_documents',
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('scope_hash', sa.String(length=64), nullable=False),
        sa.Column('document_id', sa.Text(), nullable=False),
        sa.Column('content_type', sa.String(length=255), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('etag', sa.String(length=64), nullable=False),
        sa.Column('updated', shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key_hash')
        )
        with op.batch_alter_table('lrs_documents', schema=None) as batch_op:
            batch_op.create_index('ix_lrs_documents_scope', ['scope_hash', 'updated'], unique=False)
    if _absent('lrs_statement_index'):
        op.create_table('lrs_statement_index',
        sa.Column('kind', sa.String(length=1), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('statement_seq', _SEQ, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('kind', 'hash', 'statement_seq')
        )
    if _absent('lrs_statements'):
        op.create_table('lrs_statements',
        sa.Column('seq', _SEQ, autoincrement=True, nullable=False),
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('stored', shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('verb_id', sa.String(length=2048), nullable=False),
        sa.Column('verb_hash', sa.String(length=64), nullable=False),
        sa.Column('registration', sa.String(length=36), nullable=True),
        sa.Column('object_ref', sa.String(length=36), nullable=True),
        sa.Column('voided', sa.Boolean(), nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
        sa.UniqueConstraint('id')
        )
        with op.batch_alter_table('lrs_statements', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_lrs_statements_object_ref'), ['object_ref'], unique=False)
            batch_op.create_index('ix_lrs_statements_registration', ['registration', 'seq'], unique=False)
            batch_op.create_index('ix_lrs_statements_stored', ['stored', 'seq'], unique=False)
            batch_op.create_index('ix_lrs_statements_verb', ['verb_hash', 'seq'], unique=False)
    if _absent('lrs_secrets'):
        op.create_table('lrs_secrets',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('name')
        )


def downgrade() -> None:
    op.drop_table('lrs_secrets')
    with op.batch_alter_table('lrs_statements', schema=None) as batch_op:
        batch_op.drop_index('ix_lrs_statements_verb')
        batch_op.drop_index('ix_lrs_statements_stored')
        batch_op.drop_index('ix_lrs_statements_registration')
        batch_op.drop_index(batch_op.f('ix_lrs_statements_object_ref'))
    op.drop_table('lrs_statements')
    op.drop_table('lrs_statement_index')
    with op.batch_alter_table('lrs_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_lrs_documents_scope')
    op.drop_table('lrs_documents')
    op.drop_table('lrs_credentials')
    op.drop_table('lrs_attachments')
    op.drop_table('lrs_activities')
