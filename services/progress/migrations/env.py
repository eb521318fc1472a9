from alembic import context

from services.progress import tables
from services.progress.cmi5 import tables as cmi5_tables  # noqa: F401  (the cmi5 LMS's, on the LRS's metadata)
from services.progress.lrs import tables as lrs_tables
from shared.db import run_migrations_online

# Two branches in one database (alembic.ini here lists their version locations): progress's
# read models (versions/, label progress) and the LRS's tables (lrs/migrations/versions/, label lrs).
run_migrations_online(context, [tables.metadata, lrs_tables.metadata])
