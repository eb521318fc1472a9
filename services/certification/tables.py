"""The certification database.

State (written when the rule holds or by operators; never dropped by a rebuild):
certificates, their number sequences, the per-programme issuance rules, and the outbox.
Read models (READ_MODELS; `learnstream rebuild certification` drops and refills them
from the topics): the per-learner view of enrolments and achievements.
"""
import sqlalchemy as sa

from shared.account_tables import define_accounts_table, define_audit_table
from shared.consumer import define_consumer_tables
from shared.db import UtcDateTime
from shared.outbox import define_outbox

metadata = sa.MetaData()
outbox = define_outbox(metadata)
consumer_offsets, processed_statements = define_consumer_tables(metadata)

TS = UtcDateTime()

# --- state ---------------------------------------------------------------------------------

certificates = sa.Table(
    "certificates", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    # Null only inside the issuing transaction, between the insert and the numbering.
    sa.Column("number", sa.String(80), nullable=True, unique=True),
    sa.Column("verification_code", sa.String(64), nullable=False, unique=True),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("programme_code", sa.String(40), nullable=False),
    sa.Column("programme_title", sa.String(300), nullable=False),
    sa.Column("programme_activity", sa.JSON, nullable=False),
    sa.Column("cohort_id", sa.String(36), nullable=True, index=True),
    sa.Column("cohort_name", sa.String(200), nullable=True),
    sa.Column("cohort_activity", sa.JSON, nullable=True),
    sa.Column("registration", sa.String(36), nullable=False),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("actor", sa.JSON, nullable=False),
    sa.Column("learner_name", sa.String(300), nullable=False),
    sa.Column("organisation", sa.String(300), nullable=True),
    sa.Column("issue_no", sa.Integer, nullable=False),
    sa.Column("issued_at", TS, nullable=False),
    sa.Column("qualified_at", TS, nullable=True),
    sa.Column("issued_by", sa.String(200), nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
    sa.Column("revoked_by", sa.String(200), nullable=True),
    sa.Column("revocation_reason", sa.String(1000), nullable=True),
    # Exactly once, in the database: the rule's issue is issue 1, inserted with ON
    # CONFLICT DO NOTHING on this key, so redelivery, a second instance or a replay
    # cannot add another; re-issues (operators) take the next number.
    sa.UniqueConstraint("programme_id", "learner_key", "issue_no", name="uq_certificates_issue"),
)
# ... and at most one valid certificate per learner and programme, whatever the path.
sa.Index("uq_certificates_active", certificates.c.programme_id, certificates.c.learner_key, unique=True,
         postgresql_where=certificates.c.revoked_at.is_(None), sqlite_where=certificates.c.revoked_at.is_(None))
sa.Index("ix_certificates_programme_issued", certificates.c.programme_id, certificates.c.issued_at)
sa.Index("ix_certificates_learner", certificates.c.learner_key)

certificate_sequences = sa.Table(
    "certificate_sequences", metadata,
    sa.Column("programme_code", sa.String(40), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_number", sa.Integer, nullable=False),
)

programme_rules = sa.Table(
    "programme_rules", metadata,
    sa.Column("programme_id", sa.String(36), primary_key=True),
    sa.Column("grace_days", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

# --- read models ---------------------------------------------------------------------------

programmes = sa.Table(
    "programmes", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("required_modules", sa.JSON, nullable=False),
    sa.Column("final_test", sa.String(500), nullable=False),
)

cohorts = sa.Table(
    "cohorts", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("agency", sa.String(200), nullable=True),
    sa.Column("province", sa.String(200), nullable=True),
)

learner_enrolments = sa.Table(
    "learner_enrolments", metadata,
    sa.Column("registration", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), nullable=False),
    sa.Column("programme_code", sa.String(40), nullable=False),
    sa.Column("programme_title", sa.String(300), nullable=False),
    sa.Column("programme_activity", sa.JSON, nullable=False),
    sa.Column("required_modules", sa.JSON, nullable=False),
    sa.Column("final_test", sa.String(500), nullable=False),
    sa.Column("cohort_id", sa.String(36), nullable=True),
    sa.Column("cohort_name", sa.String(200), nullable=True),
    sa.Column("cohort_activity", sa.JSON, nullable=True),
    sa.Column("learner_key", sa.String(64), nullable=False, index=True),
    sa.Column("actor", sa.JSON, nullable=False),
    sa.Column("name", sa.String(300), nullable=True),
    sa.Column("organisation", sa.String(300), nullable=True),
    sa.Column("deadline", TS, nullable=True),
    sa.Column("enrolled_at", TS, nullable=True),
    sa.Column("withdrawn_at", TS, nullable=True),
    # The rule's latest decision (domain.decide), for operators.
    sa.Column("standing", sa.String(20), nullable=False),
    sa.Column("qualified_at", TS, nullable=True),
    sa.Index("ix_learner_enrolments_programme_standing", "programme_id", "standing"),
)

achievements = sa.Table(
    "achievements", metadata,
    sa.Column("statement_id", sa.String(36), primary_key=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("achieved_at", TS, nullable=False),
    sa.Index("ix_achievements_learner", "learner_key", "activity_id"),
)


# The accounts, projected from learnstream.accounts.v1 (shared.account_tables), and the
# audit trail of changes made through this service's API (shared.audit).
accounts = define_accounts_table(metadata)
audit_log = define_audit_table(metadata)
READ_MODELS = [accounts, programmes, cohorts, learner_enrolments, achievements]
