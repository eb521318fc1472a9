"""The LRS's tables: in the progress database, but their own metadata and their own
Alembic branch (label `lrs`, services/progress/lrs/migrations/versions). Nothing here
imports progress, and progress's tables import nothing from here: the LRS's statements
reach progress's read models only through the topics. (The outbox the LRS writes its
statements to is the progress database's one, services.progress.tables.outbox, handed
to the LRS when the app is made: the relay publishes one outbox per database.)

Identifiers that can be long (activity IRIs, agents, document ids) are indexed by their
SHA-256, so every index stays small and the same on SQLite and PostgreSQL.
"""
import sqlalchemy as sa

from shared.db import UtcDateTime

metadata = sa.MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

statements = sa.Table(
    "lrs_statements", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("stored", UtcDateTime(), nullable=False),
    sa.Column("verb_id", sa.String(2048), nullable=False),
    sa.Column("verb_hash", sa.String(64), nullable=False),
    sa.Column("registration", sa.String(36), nullable=True),
    # The statement a StatementRef object points at (voiding, and filters that follow refs).
    sa.Column("object_ref", sa.String(36), nullable=True, index=True),
    sa.Column("voided", sa.Boolean(), nullable=False, default=False),
    sa.Column("payload", sa.LargeBinary(), nullable=False),
    sa.Index("ix_lrs_statements_stored", "stored", "seq"),
    sa.Index("ix_lrs_statements_verb", "verb_hash", "seq"),
    sa.Index("ix_lrs_statements_registration", "registration", "seq"),
)

# One row per (statement, agent or activity it mentions): kind "A" the agent is the actor
# or object, "a" anywhere (related_agents); "C" the activity is the object, "c" anywhere.
statement_index = sa.Table(
    "lrs_statement_index", metadata,
    sa.Column("kind", sa.String(1), primary_key=True),
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("statement_seq", _SEQ, primary_key=True, autoincrement=False),
)

activities = sa.Table(
    "lrs_activities", metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("id", sa.Text(), nullable=False),
    sa.Column("definition", sa.LargeBinary(), nullable=False),
)

attachments = sa.Table(
    "lrs_attachments", metadata,
    sa.Column("sha2", sa.String(128), primary_key=True),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("content", sa.LargeBinary(), nullable=False),
)

documents = sa.Table(
    "lrs_documents", metadata,
    # sha256 of (kind, activity, agent, registration, document id): one row per document.
    sa.Column("key_hash", sa.String(64), primary_key=True),
    # sha256 of (kind, activity, agent, registration): the set a multiple-document GET lists.
    sa.Column("scope_hash", sa.String(64), nullable=False),
    sa.Column("document_id", sa.Text(), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("content", sa.LargeBinary(), nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("updated", UtcDateTime(), nullable=False),
    sa.Index("ix_lrs_documents_scope", "scope_hash", "updated"),
)

credentials = sa.Table(
    "lrs_credentials", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(500), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# Secrets the LRS makes for itself, one row each (today only "cursor", the key the `more`
# page tokens are signed with when LRS_CURSOR_SECRET is not set): in the database, so
# that every web worker and every restart signs and checks with the same key.
secrets = sa.Table(
    "lrs_secrets", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.LargeBinary(), nullable=False),
)
