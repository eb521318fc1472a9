"""The forwarding database.

State: the targets (with their credentials, sealed: this database is the only place they
are kept), each target's own offsets per topic partition, its quarantine and its status (last
error) as the forwarder last wrote it. Read models (READ_MODELS; rebuilt from the
enrollment topic): the catalog of cohorts and enrolments that cohort and agency filters
are decided with.
"""
import sqlalchemy as sa

from shared.account_tables import define_accounts_table, define_audit_table
from shared.consumer import define_consumer_tables
from shared.db import UtcDateTime

metadata = sa.MetaData()
# The catalog projection's offsets and claimed ids (shared.consumer).
consumer_offsets, processed_statements = define_consumer_tables(metadata)

TS = UtcDateTime()

targets = sa.Table(
    "targets", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("url", sa.String(1000), nullable=False),
    sa.Column("xapi_version", sa.String(10), nullable=False),
    sa.Column("username", sa.String(300), nullable=False),
    # Sealed with a key this database never holds (shared.secrets; the repository seals
    # and opens it): the forwarder needs it in clear to authenticate, so it cannot be a
    # hash. Never answered, never logged (queries.py leaves it out; domain.Target hides it).
    sa.Column("password", sa.String(2000), nullable=False),
    sa.Column("filter", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("timeout_seconds", sa.Float, nullable=False),
    # Bumped by every change: the forwarder restarts that target's loop with the new settings.
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

# Per target, so that a target that fails holds back only itself: the others' offsets move on.
target_offsets = sa.Table(
    "target_offsets", metadata,
    sa.Column("target_id", sa.String(36), primary_key=True),
    sa.Column("topic", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    # The partition's end as the forwarder holding it last saw it: the lag is the sum of
    # end - next over the target's rows, right however many replicas share its partitions.
    sa.Column("end_offset", sa.BigInteger, nullable=True),
)

quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("target_id", sa.String(36), primary_key=True),
    sa.Column("statement_id", sa.String(36), primary_key=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(100), nullable=True),
    sa.Column("statement", sa.JSON, nullable=False),
    # The target's answer: status and (the start of) the body.
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("quarantined_at", TS, nullable=False),
    sa.Column("replay_requested_at", TS, nullable=True),
    sa.Column("resolved_at", TS, nullable=True),
    sa.Index("ix_quarantine_pending", "target_id", "resolved_at", "replay_requested_at"),
)

target_status = sa.Table(
    "target_status", metadata,
    sa.Column("target_id", sa.String(36), primary_key=True),
    sa.Column("delivered", sa.BigInteger, nullable=False),
    sa.Column("last_delivered_at", TS, nullable=True),
    sa.Column("retrying", sa.Boolean, nullable=False),
    sa.Column("stopped", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.String(2000), nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)

# --- read models: the catalog --------------------------------------------------------------------

cohorts = sa.Table(
    "cohorts", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("agency", sa.String(200), nullable=True),
)

enrolments = sa.Table(
    "enrolments", metadata,
    sa.Column("registration", sa.String(36), primary_key=True),
    sa.Column("learner_key", sa.String(64), nullable=False, index=True),
    sa.Column("cohort_id", sa.String(36), nullable=True),
    sa.Column("agency", sa.String(200), nullable=True),
)


# The accounts, projected from learnstream.accounts.v1 (shared.account_tables), and the
# audit trail of changes made through this service's API (shared.audit).
accounts = define_accounts_table(metadata)
audit_log = define_audit_table(metadata)
READ_MODELS = [accounts, cohorts, enrolments]
