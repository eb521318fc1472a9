"""The progress database: read models built from the topics, plus consumer bookkeeping.

Everything here can be dropped and rebuilt from the topics (`learnstream rebuild progress`).
"""
import sqlalchemy as sa

from shared.account_tables import define_accounts_table, define_audit_table
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
    sa.Column("cmi5_course", sa.String(36), nullable=True),  # the imported course delivering it
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
    # shared.name_order.sort_key(name): the list's order by name (Vietnamese), in SQL.
    sa.Column("name_key", sa.LargeBinary(), nullable=True),
    sa.Column("organisation", sa.String(300), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("enrolled_at", UtcDateTime(), nullable=True),
    sa.Column("deadline", UtcDateTime(), nullable=True),
    sa.Column("withdrawn_at", UtcDateTime(), nullable=True),
    # Derived from the facts below by services.progress.domain.summarise (issue 6).
    sa.Column("modules_required", sa.Integer, nullable=False, server_default="0"),
    sa.Column("modules_completed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("modules_completed_at", UtcDateTime(), nullable=True),
    sa.Column("first_activity_at", UtcDateTime(), nullable=True),
    sa.Column("last_activity_at", UtcDateTime(), nullable=True),
    sa.Column("time_spent_seconds", sa.Float, nullable=False, server_default="0"),
    sa.Column("final_test_status", sa.String(20), nullable=False, server_default="not_attempted"),
    sa.Column("final_test_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("final_test_best_score", sa.Float, nullable=True),
    sa.Column("final_test_decided_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("certificate_number", sa.String(60), nullable=True),
    sa.Column("certificate_status", sa.String(20), nullable=True),
    sa.Column("certified_at", UtcDateTime(), nullable=True),
    sa.Index("ix_learner_enrolments_cohort_status", "cohort_id", "status"),
)

# The facts, kept per learner and statement (not per enrolment): a player's statement may
# carry no registration, may arrive before the enrolment it belongs to, and may be voided.
learner_statements = sa.Table(
    "learner_statements", metadata,
    sa.Column("statement_id", sa.String(36), primary_key=True),
    sa.Column("learner_key", sa.String(64), nullable=False, index=True),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
)

# What each learner did on each activity, summed over their facts above (learner_statements):
# kept up to date from each batch's new facts alone (services.progress.facts), so that a
# learner's progress row costs the same on their 30th statement as on their first; derived
# again from learner_statements for a learner a void takes a fact from, and for everyone at
# the end of a rebuild.
learner_activities = sa.Table(
    "learner_activities", metadata,
    sa.Column("learner_key", sa.String(64), primary_key=True),
    sa.Column("activity_id", sa.String(500), primary_key=True),
    sa.Column("first_at", UtcDateTime(), nullable=False),
    sa.Column("last_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
    # Whole milliseconds (each statement's duration rounded half up): a sum that does not
    # depend on the order the statements arrived in, as a float sum would.
    sa.Column("milliseconds", sa.BigInteger, nullable=False),
)

# Statements an LRS voiding statement took back; kept so a void that arrives before the
# statement it voids still wins.
voided_statements = sa.Table(
    "voided_statements", metadata,
    sa.Column("statement_id", sa.String(36), primary_key=True),
)

learner_activity_days = sa.Table(
    "learner_activity_days", metadata,
    sa.Column("learner_key", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
)

final_test_outcomes = sa.Table(
    "final_test_outcomes", metadata,
    sa.Column("statement_id", sa.String(36), primary_key=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    # Which of the assessment's attempts this decides, and how many were used and allowed
    # then (null in an LMS's result and in older statements).
    sa.Column("attempt_id", sa.String(36), nullable=True),
    sa.Column("attempts_used", sa.Integer, nullable=True),
    sa.Column("attempts_allowed", sa.Integer, nullable=True),
    sa.Index("ix_final_test_outcomes_learner", "learner_key", "activity_id"),
)

# Every statement of the assessment service naming an attempt, from the attempt's start:
# an attempt counts once opened, whether or not it was ever submitted.
final_test_attempts = sa.Table(
    "final_test_attempts", metadata,
    sa.Column("statement_id", sa.String(36), primary_key=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("attempt_id", sa.String(36), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_final_test_attempts_learner", "learner_key", "activity_id"),
)

learner_certificates = sa.Table(
    "learner_certificates", metadata,
    sa.Column("learner_key", sa.String(64), primary_key=True),
    sa.Column("programme_id", sa.String(36), primary_key=True),
    sa.Column("number", sa.String(60), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("issued_at", UtcDateTime(), nullable=True),
    sa.Column("changed_at", UtcDateTime(), nullable=False),
)

# The database's outbox: the LRS (issue 3) stages the statements it receives here, and the
# relay publishes them to learnstream.lrs.v1. The LRS's own tables are services.progress.lrs.tables.
outbox = define_outbox(metadata)

# The accounts, projected from learnstream.accounts.v1 (shared.account_tables), and the
# audit trail of changes made through this service's API (shared.audit).
accounts = define_accounts_table(metadata)
audit_log = define_audit_table(metadata)
