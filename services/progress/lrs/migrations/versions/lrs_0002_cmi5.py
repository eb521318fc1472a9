"""cmi5 LMS tables: courses, their files, registrations, sessions (issue 16)

Revision ID: lrs_0002
Revises: lrs_0001
Create Date: 2026-12-02 04:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import shared.db


# revision identifiers, used by Alembic.
revision: str = 'lrs_0002'
down_revision: Union[str, Sequence[str], None] = 'lrs_0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('cmi5_courses',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('course_id', sa.Text(), nullable=False),
    sa.Column('programme_id', sa.String(length=36), nullable=True),
    sa.Column('structure', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cmi5_courses_programme_id', 'cmi5_courses', ['programme_id'])
    op.create_table('cmi5_files',
    sa.Column('course', sa.String(length=36), nullable=False),
    sa.Column('path_hash', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('course', 'path_hash')
    )
    op.create_table('cmi5_registrations',
    sa.Column('registration', sa.String(length=36), nullable=False),
    sa.Column('course', sa.String(length=36), nullable=False),
    sa.Column('actor', sa.LargeBinary(), nullable=False),
    sa.Column('records', sa.LargeBinary(), nullable=False),
    sa.Column('satisfied', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('registration')
    )
    op.create_index('ix_cmi5_registrations_course', 'cmi5_registrations', ['course'])
    op.create_table('cmi5_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('registration', sa.String(length=36), nullable=False),
    sa.Column('course', sa.String(length=36), nullable=False),
    sa.Column('au_index', sa.Integer(), nullable=False),
    sa.Column('launch_mode', sa.String(length=10), nullable=False),
    sa.Column('fetch_hash', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('judged', sa.Boolean(), nullable=False),
    sa.Column('preferences_read', sa.Boolean(), nullable=False),
    sa.Column('launched_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fetch_hash')
    )
    op.create_index('ix_cmi5_sessions_registration', 'cmi5_sessions', ['registration', 'au_index'])
    op.create_index('ix_cmi5_sessions_open', 'cmi5_sessions', ['status', 'expires_at'])


def downgrade() -> None:
    op.drop_table('cmi5_sessions')
    op.drop_table('cmi5_registrations')
    op.drop_table('cmi5_files')
    op.drop_table('cmi5_courses')
