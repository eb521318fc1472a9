"""The assessment database: its own state (banks, final tests, attempts) and the shared
outbox; then read models built from the topics, which a rebuild drops and refills."""
import sqlalchemy as sa

from shared.account_tables import define_accounts_table, define_audit_table
from shared.consumer import define_consumer_tables
from shared.db import UtcDateTime
from shared.outbox import define_outbox

metadata = sa.MetaData()
outbox = define_outbox(metadata)
consumer_offsets, processed_statements = define_consumer_tables(metadata)

TS = UtcDateTime()

# --- state (written by commands) ------------------------------------------------------------

question_banks = sa.Table(
    "question_banks", metadata,
    sa.Column("programme_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    # The whole bank as one document: it is read whole to draw a paper, never queried inside.
    sa.Column("questions", sa.JSON, nullable=False),
    sa.Column("question_count", sa.Integer, nullable=False),
    sa.Column("topics", sa.JSON, nullable=False),
    sa.Column("imported_at", TS, nullable=False),
    sa.Column("imported_by", sa.String(200), nullable=False),
)

final_tests = sa.Table(
    "final_tests", metadata,
    sa.Column("programme_id", sa.String(36), primary_key=True),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("question_count", sa.Integer, nullable=True),
    sa.Column("per_topic", sa.JSON, nullable=True),
    sa.Column("time_limit_seconds", sa.Integer, nullable=False),
    sa.Column("pass_mark", sa.Float, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("counting", sa.String(10), nullable=False),
    # Counts definitions, so consumers keep the newest even when two share a timestamp.
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

attempts = sa.Table(
    "attempts", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("registration", sa.String(36), nullable=False),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("bank_version", sa.Integer, nullable=False),
    # The drawn questions with their answers: a finished attempt keeps its score and
    # can be re-marked whatever later bank versions change.
    sa.Column("questions", sa.JSON, nullable=False),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("pass_mark", sa.Float, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("finished_at", TS, nullable=True),
    sa.Column("scaled", sa.Float, nullable=True),
    sa.Column("raw", sa.Float, nullable=True),
    sa.Column("credits", sa.JSON, nullable=True),
    # Two concurrent starts cannot both take attempt number N.
    sa.UniqueConstraint("registration", "number", name="uq_attempts_registration_number"),
    sa.Index("ix_attempts_status_expires", "status", "expires_at"),
)

# --- read models (projections.py; `learnstream rebuild assessment`) --------------------------

known_programmes = sa.Table(
    "known_programmes", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("final_test", sa.String(500), nullable=False),
    sa.Column("activity", sa.JSON, nullable=False),
)

known_enrolments = sa.Table(
    "known_enrolments", metadata,
    sa.Column("registration", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("cohort_id", sa.String(36), nullable=True),
    # The cohort's agency and province: what an agency operator's units are matched with.
    sa.Column("agency", sa.String(200), nullable=True),
    sa.Column("province", sa.String(200), nullable=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("final_test", sa.String(500), nullable=False),
    # Copied into our statements so they name the learner, programme and cohort exactly
    # as the enrolment statement did.
    sa.Column("actor", sa.JSON, nullable=False),
    sa.Column("programme", sa.JSON, nullable=False),
    sa.Column("cohort", sa.JSON, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("deadline", TS, nullable=True),
    sa.Column("enrolled_at", TS, nullable=True),
    sa.Column("withdrawn_at", TS, nullable=True),
    sa.Index("ix_known_enrolments_learner_test", "learner_key", "final_test"),
    sa.Index("ix_known_enrolments_programme", "programme_id"),
)

test_rules = sa.Table(
    "test_rules", metadata,
    sa.Column("programme_id", sa.String(36), primary_key=True),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("counting", sa.String(10), nullable=False),
    sa.Column("pass_mark", sa.Float, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("defined_at", TS, nullable=False),
)

attempt_log = sa.Table(
    "attempt_log", metadata,
    # Our attempt id, or the statement id of a result an LMS reported.
    sa.Column("attempt_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("registration", sa.String(36), nullable=True, index=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("number", sa.Integer, nullable=True),
    sa.Column("started_at", TS, nullable=True),
    sa.Column("finished_at", TS, nullable=True),
    sa.Column("scaled", sa.Float, nullable=True),
    sa.Column("success", sa.Boolean, nullable=True),
    sa.Index("ix_attempt_log_learner_activity", "learner_key", "activity_id"),
)

learner_results = sa.Table(
    "learner_results", metadata,
    sa.Column("registration", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("cohort_id", sa.String(36), nullable=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("enrolment_status", sa.String(20), nullable=False),
    sa.Column("attempts_used", sa.Integer, nullable=False),
    sa.Column("best_score", sa.Float, nullable=True),
    sa.Column("latest_score", sa.Float, nullable=True),
    sa.Column("counted_score", sa.Float, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("decided_at", TS, nullable=True),
    sa.Index("ix_learner_results_cohort_status", "cohort_id", "status"),
    sa.Index("ix_learner_results_programme_status", "programme_id", "status"),
)


# The accounts, projected from learnstream.accounts.v1 (shared.account_tables), and the
# audit trail of changes made through this service's API (shared.audit).
accounts = define_accounts_table(metadata)
audit_log = define_audit_table(metadata)
READ_MODELS = [accounts, known_programmes, known_enrolments, test_rules, attempt_log, learner_results]
