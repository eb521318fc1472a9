"""The progress database: read models built from the topics, plus consumer bookkeeping.

Everything here can be dropped and rebuilt from the topics (`learnstream rebuild progress`).
"""
import sqlalchemy as sa

from shared.consumer import define_consumer_tables
from shared.db import UtcDateTime
from shared.outbox import define_outbox

metadata = sa.MetaData()
consumer_offsets, processed_statements = define_consumer_tables(metadata)

programmes = sa.Table(
    "programmes", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("required_modules", sa.JSON, nullable=False),
    sa.Column("final_test", sa.String(500), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
)

cohorts = sa.Table(
    "cohorts", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("agency", sa.String(200), nullable=False),
    sa.Column("province", sa.String(200), nullable=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("accounts_issued_at", UtcDateTime(), nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
)

learner_enrolments = sa.Table(
    "learner_enrolments", metadata,
    sa.Column("registration", sa.String(36), primary_key=True),
    sa.Column("cohort_id", sa.String(36), nullable=False),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("learner_key", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(300), nullable=True),
    sa.Column("organisation", sa.String(300), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("enrolled_at", UtcDateTime(), nullable=True),
    sa.Column("deadline", UtcDateTime(), nullable=True),
    sa.Column("withdrawn_at", UtcDateTime(), nullable=True),
    sa.Index("ix_learner_enrolments_cohort_status", "cohort_id", "status"),
)

# The LRS (issue 3): its outbox publishes statements it receives to learnstream.lrs.v1.
outbox = define_outbox(metadata)
from services.progress.lrs import tables as lrs_tables  # noqa: E402,F401  (registers the LRS tables)
