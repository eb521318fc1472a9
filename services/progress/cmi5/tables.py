"""The cmi5 LMS's tables: on the LRS's metadata and Alembic branch (label lrs,
lrs_0002_cmi5), since, like the LRS's own, they are the record itself and not a read
model that could be rebuilt from the topics. Long paths are indexed by their SHA-256.
"""
import sqlalchemy as sa

from services.progress.lrs.tables import metadata
from shared.db import UtcDateTime

# An imported package: its course structure (JSON, structure.Course as stored by lms.py).
courses = sa.Table(
    "cmi5_courses", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("course_id", sa.Text(), nullable=False),  # the publisher's IRI
    sa.Column("structure", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# The files of a zip package, served at /cmi5/content/<course>/<path>.
files = sa.Table(
    "cmi5_files", metadata,
    sa.Column("course", sa.String(36), primary_key=True),
    sa.Column("path_hash", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("content", sa.LargeBinary(), nullable=False),
)

# A learner's registration for a course: what each AU reported, and which blocks and the
# course the LMS has said are satisfied (each said once).
registrations = sa.Table(
    "cmi5_registrations", metadata,
    sa.Column("registration", sa.String(36), primary_key=True),
    sa.Column("course", sa.String(36), nullable=False, index=True),
    sa.Column("actor", sa.LargeBinary(), nullable=False),
    sa.Column("records", sa.LargeBinary(), nullable=False),  # AU id -> moveon.AuRecord fields
    sa.Column("satisfied", sa.LargeBinary(), nullable=False),  # block ids and "course"
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# One launch of one AU. `fetch_hash`: of the fetch URL's secret (one POST trades it);
# `secret_hash`: of the auth token's secret it gave. status: launched, initialized,
# terminated, abandoned, closed (superseded before it began).
sessions = sa.Table(
    "cmi5_sessions", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("registration", sa.String(36), nullable=False),
    sa.Column("course", sa.String(36), nullable=False),
    sa.Column("au_index", sa.Integer(), nullable=False),
    sa.Column("launch_mode", sa.String(10), nullable=False),
    sa.Column("fetch_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("judged", sa.Boolean(), nullable=False, default=False),  # passed or failed sent in it
    sa.Column("preferences_read", sa.Boolean(), nullable=False, default=False),  # rules.Progress says why
    sa.Column("launched_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_cmi5_sessions_registration", "registration", "au_index"),
    sa.Index("ix_cmi5_sessions_open", "status", "expires_at"),
)
