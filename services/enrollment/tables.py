"""The enrollment database: its own state, plus the shared outbox."""
import sqlalchemy as sa

from shared.account_tables import define_accounts_table, define_audit_table
from shared.consumer import define_consumer_tables
from shared.db import UtcDateTime
from shared.outbox import define_outbox

metadata = sa.MetaData()
outbox = define_outbox(metadata)
consumer_offsets, processed_statements = define_consumer_tables(metadata)

TS = UtcDateTime()

programmes = sa.Table(
    "programmes", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("required_modules", sa.JSON, nullable=False),
    sa.Column("final_test", sa.String(500), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    # The imported cmi5 course whose AUs and blocks are the required modules, if any.
    sa.Column("cmi5_course", sa.String(36), nullable=True),
)

# The cmi5 courses the progress service's LMS has imported (learnstream.content.v1,
# projections.py): what a programme can be defined from or attached to. A read model.
courses = sa.Table(
    "cmi5_courses", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("course_iri", sa.Text(), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("required_modules", sa.JSON, nullable=False),
    sa.Column("imported_at", TS, nullable=False),
    # Kept as a tombstone once removed: an import read after its removal (an older record
    # on another partition, or a rebuild) must not bring the course back.
    sa.Column("removed_at", TS, nullable=True),
)
READ_MODELS = [courses]

cohorts = sa.Table(
    "cohorts", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), sa.ForeignKey("programmes.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("agency", sa.String(200), nullable=False),
    sa.Column("province", sa.String(200), nullable=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("accounts_issued_at", TS, nullable=False),
    sa.Column("activity_id", sa.String(500), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("programme_id", "name", name="uq_cohorts_programme_name"),
)

enrolments = sa.Table(
    "enrolments", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("programme_id", sa.String(36), sa.ForeignKey("programmes.id"), nullable=False),
    sa.Column("cohort_id", sa.String(36), sa.ForeignKey("cohorts.id"), nullable=False, index=True),
    sa.Column("learner_key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("account_home_page", sa.String(500), nullable=True),
    sa.Column("account_name", sa.String(300), nullable=True),
    sa.Column("organisation", sa.String(300), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("enrolled_at", TS, nullable=False),
    sa.Column("deadline", TS, nullable=False),
    sa.Column("withdrawn_at", TS, nullable=True),
    sa.Column("withdrawal_reason", sa.String(1000), nullable=True),
    # One enrolment per learner and programme: what makes a re-imported file harmless.
    sa.UniqueConstraint("programme_id", "learner_key", name="uq_enrolments_programme_learner"),
)

# The accounts (shared.accounts): this service's own, written by its commands; and the
# audit trail of changes made through its API (shared.audit).
accounts = define_accounts_table(metadata)
audit_log = define_audit_table(metadata)
