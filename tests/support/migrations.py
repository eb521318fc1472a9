"""Upgrading data stored at an older revision: a database of the test's own, migrated to a
revision, seeded there, then migrated to the head."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared import db
from shared.service import load


def own_database(deployment, name: str) -> str:
    """A database of this test's own beside the deployment's (same server or folder)."""
    url = make_url(deployment.env["DATABASE_URL"])
    if db.is_sqlite(url):
        return url.set(database=url.database.replace("db.sqlite", f"{name}.sqlite")).render_as_string(False)
    return url.set(database=f"{url.database}_{name}").render_as_string(hide_password=False)


def seeded_at_then_upgraded(url: str, service: str, revision: str, rows: dict[str, list[dict]]) -> sa.Engine:
    """`rows` (by table) written at `revision`, then every later migration applied."""
    spec = load(service)
    db.migrate(url, spec.migrations, revision=revision)
    engine = db.create_engine(url)
    with engine.begin() as conn:
        for table, values in rows.items():
            # Today's table objects, for their column types; only the given columns are written.
            conn.execute(spec.metadata.tables[table].insert(), values)
    db.migrate(url, spec.migrations)
    return engine
