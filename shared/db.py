"""Database access shared by every service: engines, schema migrations, transactions.

SQLAlchemy Core, not the ORM: services write rows and statements in bulk, and the
read models are plain tables. SQLite (the embedded default) and PostgreSQL must behave
alike; code that only works on one of them is a bug.
"""
from __future__ import annotations

import logging
import sqlite3
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError

from shared.config import DatabaseTimeouts
from shared.errors import Conflict
from shared.sqlite_writers import QueuedWriterConnection

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = DatabaseTimeouts.sqlite_busy_seconds
# Schema changes may rewrite whole tables: no statement limit for them.
UNBOUNDED = DatabaseTimeouts(statement_seconds=0)
READ_ONLY = "learnstream_read_only"


_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # sqlalchemy.dialects.sqlite.DATETIME's storage format


def _as_utc(value):
    if value.tzinfo is UTC:  # most are already (xapi.parse_timestamp, utc_now)
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware value")
    return value.astimezone(UTC)


class UtcDateTime(sa.TypeDecorator):
    """A timestamp that is always timezone-aware UTC when read back.

    SQLite keeps no zone; without this the same column reads naive there and aware on
    PostgreSQL, and comparisons between them fail.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect):
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # process_bind_param and SQLite's DATETIME text in one call, giving the same text
        # SQLAlchemy's sqlite.DATETIME writes: every fact and claim row has a timestamp.
        def process(value):
            if value is None:
                return None
            value = _as_utc(value)
            return _SQLITE_DATETIME % (value.year, value.month, value.day, value.hour, value.minute,
                                       value.second, value.microsecond)
        return process

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def is_sqlite(engine_or_url) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(str(engine_or_url))
    return url.get_backend_name() == "sqlite"


def create_engine(url: str, priority: bool = False, timeouts: DatabaseTimeouts = DatabaseTimeouts(),
                  **kwargs) -> Engine:
    """`priority`: writes go ahead of the queue for SQLite's one write lock (the relay's,
    which must keep up with everyone else's commits). No effect on PostgreSQL.

    `timeouts` bound every wait on the database (connecting, a statement, SQLite's write
    lock): a database that is down or stuck is an error (`unavailable`, a 503) in bounded
    time, never a request that hangs until gunicorn kills its worker."""
    # An error's text never carries a statement's parameters (learners' identifiers),
    # whichever log or traceback it reaches.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        return _sqlite_engine(url, priority, timeouts, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    connect_args = {
        "connect_timeout": max(2, round(timeouts.connect_seconds)),
        # A server that vanished without closing the socket (host down, network cut)
        # sends no RST: keepalives find an idle connection dead in ~25 s.
        "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
    }
    if timeouts.statement_seconds:
        limit_ms = int(timeouts.statement_seconds * 1000)
        connect_args["options"] = f"-c statement_timeout={limit_ms}"
        connect_args["tcp_user_timeout"] = limit_ms  # ... and one waiting on an answer
        # Waiting for a pooled connection is bounded the same way (sa.exc.TimeoutError).
        kwargs.setdefault("pool_timeout", timeouts.statement_seconds)
    kwargs["connect_args"] = {**connect_args, **kwargs.get("connect_args", {})}
    engine = sa.create_engine(url, **kwargs)
    sa.event.listen(engine, "connect", _lists_in_binary)
    return engine


def _lists_in_binary(dbapi_connection, _record) -> None:
    """A list parameter (`among`'s array) goes to PostgreSQL in binary: psycopg's text
    dumper for lists is Python, about five times slower, and it is the rebuild's hot path."""
    from psycopg.types.array import ListBinaryDumper
    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


# SQLite's errors that say "not now" (the write lock not had within the busy timeout, the
# file unreachable), as opposed to a bug such as a missing table.
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database file",
                       "disk i/o error")


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached or did not answer in time
    (server down or restarting, connection lost, statement timeout, SQLite's lock not
    had, no pooled connection free): worth a retry later (503), not a bug (500)."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        return isinstance(exc.orig, sqlite3.OperationalError) and str(exc.orig).lower().startswith(
            _SQLITE_UNAVAILABLE)
    # psycopg: OperationalError is connection failures, administrator shutdown, query
    # cancelled (statement_timeout), too many connections; InterfaceError a closed connection.
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def _sqlite_engine(url: str, priority: bool = False, timeouts: DatabaseTimeouts = DatabaseTimeouts(),
                   **kwargs) -> Engine:
    database = make_url(url).database
    lock_path = None
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        lock_path = f"{database}-writer.lock"
    busy_seconds = timeouts.sqlite_busy_seconds
    engine = sa.create_engine(url, connect_args={"timeout": busy_seconds,
                                                 "factory": QueuedWriterConnection}, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        dbapi_connection.lock_path = lock_path
        dbapi_connection.priority = priority
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and
        # then writes can fail with "database is locked" when another process wrote in
        # between, whatever the busy timeout. WAL keeps readers unblocked meanwhile.
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.connection.dbapi_connection.take_write_turn()
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def unique_or_conflict(message: str, field: str | None = None):
    """A write that a unique constraint may refuse: the refusal is the domain's Conflict
    (409 naming the field). The transaction is spoilt on PostgreSQL, so the Conflict must
    end the unit of work; it does, since nothing catches it before."""
    try:
        yield
    except IntegrityError:
        raise Conflict(message, field) from None


@contextmanager
def reading(engine: Engine):
    """A connection for queries only: on SQLite it does not take the write lock."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        try:
            yield conn
        finally:
            conn.rollback()


def ensure_database(url: str) -> None:
    """Create the service's database if it does not exist (PostgreSQL) or set WAL (SQLite).

    WAL is set once here, before any worker starts, rather than on every connection:
    workers starting together fail with "database is locked" when each switches it.
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            engine.dispose()
        return
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
            if not exists:
                try:
                    conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
                    log.info("created database", extra={"database": target.database})
                except ProgrammingError as exc:  # another process created it first
                    if "already exists" not in str(exc):
                        raise
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Remove a service database entirely (tests and `make clean`)."""
    if is_sqlite(url):
        database = make_url(url).database
        for suffix in ("", "-wal", "-shm", "-writer.lock", "-writer.lock.gate"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        return
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        admin.dispose()


def _alembic_config(migrations_dir: Path) -> Config:
    """A service's Alembic configuration: its migrations directory (env.py), and the
    alembic.ini there if it has one, which lists the version locations of a database
    with more than one branch (progress: its own chain and the LRS's)."""
    ini = migrations_dir / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(migrations_dir))
    return config


def migrate(url: str, migrations_dir: Path, revision: str = "heads") -> None:
    """Bring the database to the newest schema (every branch's head), or to `revision`
    for a test of a migration itself; run once before workers start."""
    ensure_database(url)
    engine = create_engine(url, timeouts=UNBOUNDED)
    try:
        config = _alembic_config(migrations_dir)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def new_revision(url: str, migrations_dir: Path, message: str, branch: str | None = None) -> None:
    """Autogenerate a migration from the difference between the tables and the database;
    on the head of `branch` (a branch label) where the database has several."""
    migrate(url, migrations_dir)
    engine = create_engine(url)
    try:
        config = _alembic_config(migrations_dir)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.revision(config, message=message, autogenerate=True, head=f"{branch}@head" if branch else "head")
    finally:
        engine.dispose()


def run_migrations_online(context, target_metadata) -> None:
    """The body of every service's Alembic env.py: run on the connection `migrate` passed."""
    conn = context.config.attributes.get("connection")
    if conn is None:
        raise RuntimeError("run migrations with `learnstream migrate SERVICE` (it supplies the connection)")
    context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _insert_for(conn):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_statement(conn, table: sa.Table):
    """The dialect's INSERT for `table` (with on_conflict_do_nothing / _do_update)."""
    return _insert_for(conn)(table)


def insert_ignoring_duplicates(conn, table: sa.Table, rows: list[dict], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL.

    It says nothing about which rows went in: psycopg reports a rowcount of -1 for these
    inserts. Ask insert_if_absent or insert_returning_new_ids when that matters."""
    if not rows:
        return
    if _unnest_takes(conn, table, list(rows[0])):
        _insert_unnest(conn, table, list(rows[0]), _dict_columns(conn, table, rows),
                       f" ON CONFLICT ({_names(conn, keys)}) DO NOTHING")
        return
    conn.execute(_insert_for(conn)(table).on_conflict_do_nothing(index_elements=keys), rows)


def insert_if_absent(conn, table: sa.Table, row: dict, keys: list[str]) -> bool:
    """Insert one row unless a row with the same keys exists; True if it went in."""
    stmt = (_insert_for(conn)(table).on_conflict_do_nothing(index_elements=keys)
            .returning(*[table.c[k] for k in keys]))
    return conn.execute(stmt, row).first() is not None


def upsert(conn, table: sa.Table, rows: list[dict], keys: list[str], update: list[str] | None = None) -> None:
    """INSERT ... ON CONFLICT DO UPDATE, on both databases: of the `update` columns, or
    (None) of every non-key column. Of rows with the same keys the last wins (PostgreSQL
    refuses one statement that changes a row twice). Nothing to update (`update=[]`, or
    rows of key columns only) is an insert that keeps what is there: an empty SET is no
    SQL either database takes."""
    if not rows:
        return
    rows = list({tuple(row[k] for k in keys): row for row in rows}.values())
    changing = [n for n in rows[0] if n not in keys] if update is None else update
    if not changing:
        insert_ignoring_duplicates(conn, table, rows, keys)
        return
    if _unnest_takes(conn, table, list(rows[0])):
        quote = conn.dialect.identifier_preparer.quote
        _insert_unnest(conn, table, list(rows[0]), _dict_columns(conn, table, rows),
                       f" ON CONFLICT ({_names(conn, keys)}) DO UPDATE SET "
                       + ", ".join(f"{quote(n)} = EXCLUDED.{quote(n)}" for n in changing))
        return
    insert = _insert_for(conn)(table)
    conn.execute(insert.on_conflict_do_update(index_elements=keys, set_={n: insert.excluded[n] for n in changing}),
                 rows)


def upsert_changed(conn, table: sa.Table, rows: list[dict], key: str) -> None:
    """`upsert` of only the rows that are missing or differ from what is stored, by one
    key column. Why: on PostgreSQL an ON CONFLICT DO UPDATE locks its row till commit
    even when it writes the same values (a WHERE on the update does not spare the lock),
    so workers or rebuild processes that all restate one cohort with every enrolment
    would queue behind each other's whole transactions. A row read as equal and changed
    meanwhile by another writer ends as if this write had come first: the same
    last-writer-wins the plain upsert gives writers that race."""
    if not rows:
        return
    rows = list({row[key]: row for row in rows}.values())
    columns = list(rows[0])
    stored = {r[key]: r for r in conn.execute(
        sa.select(*[table.c[n] for n in columns]).where(table.c[key].in_([row[key] for row in rows]))).mappings()}
    changed = [row for row in rows if (old := stored.get(row[key])) is None or any(old[n] != row[n] for n in columns)]
    upsert(conn, table, changed, [key])


def update_many(conn, table: sa.Table, key: str, rows: list[dict]) -> None:
    """Each row's other columns set on the row of `table` whose `key` it names (every row
    of the first one's columns, a key at most once). On PostgreSQL one `UPDATE ... FROM
    unnest(...)` of an array per column, as `_insert_unnest` writes: an executemany sends
    and processes an UPDATE per row (a progress batch updates thousands of enrolments).
    Elsewhere, or for columns the arrays do not carry, SQLAlchemy's executemany."""
    if not rows:
        return
    columns = list(rows[0])
    changing = [name for name in columns if name != key]
    if _unnest_takes(conn, table, columns, updating=True):
        quote, target = conn.dialect.identifier_preparer.quote, conn.dialect.identifier_preparer.format_table(table)
        conn.exec_driver_sql(
            f"UPDATE {target} SET {', '.join(f'{quote(n)} = v.{quote(n)}' for n in changing)} "
            f"FROM unnest({_array_parameters(conn, table, columns)}) AS v({_names(conn, columns)}) "
            f"WHERE {target}.{quote(key)} = v.{quote(key)}",
            tuple(_driver_arrays(conn, table, columns, _dict_columns(conn, table, rows))))
        return
    # The key's parameter under another name: one named as a column is that column's SET.
    conn.execute(table.update().where(table.c[key] == sa.bindparam(f"b_{key}")),
                 [{**{name: row[name] for name in changing}, f"b_{key}": row[key]} for row in rows])


def insert_many_fast(conn, table: sa.Table, columns: list[str], rows: list[tuple]) -> None:
    """A plain INSERT of many rows straight to the driver: executemany on SQLite, one
    array per column on PostgreSQL (`_insert_unnest`, in the rows' order, which the
    outbox's ids keep).

    For hot paths only: SQLAlchemy's per-row parameter processing cost more than the
    insert itself (the LRS writes about eight index and outbox rows per statement).
    Values go to the driver as they are, so each column's Python type must already be
    the driver's: `to_driver` converts through the column's own type."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _insert_unnest(conn, table, columns, [list(c) for c in zip(*rows, strict=True)], "")
        return
    head, one = _raw_insert(conn, table, columns)
    conn.exec_driver_sql(head + one, rows)


def _raw_insert(conn, table: sa.Table, columns: list[str]) -> tuple[str, str]:
    """`INSERT INTO table (columns) VALUES ` and one row's placeholders, in the driver's
    paramstyle: the fast inserts' SQL."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    head = f"INSERT INTO {conn.dialect.identifier_preparer.format_table(table)} " \
           f"({', '.join(quote(c) for c in columns)}) VALUES "
    return head, f"({', '.join([mark] * len(columns))})"


def to_driver(conn, column: sa.Column):
    """The function SQLAlchemy would apply to a value of `column` before the driver sees it."""
    # The dialect's own implementation: a TypeDecorator's generic bind_processor would hand
    # SQLite a datetime for sqlite3's adapter, stored in another text form than SQLAlchemy's.
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process or (lambda value: value)


def chunks(items: list, size: int = 500):
    """Slices small enough for an IN (...) list on either database."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def among(conn, column: sa.ColumnElement, values) -> sa.ColumnElement:
    """`column IN (values)`. On PostgreSQL `column = ANY(array)`: an IN list has a
    placeholder per value, which psycopg parses anew for every query of more than a few
    (it caches only short ones); the array is one parameter, and the SQL the same for any
    number of values."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def paged(conn, query: sa.Select, args: dict, to_item=lambda row: row._asdict()) -> dict:
    """One page of an ordered query, as every listing answers it: items, page,
    page_size (from `args`) and the total the filters match."""
    page, size = args["page"], args["page_size"]
    total = conn.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    rows = conn.execute(query.limit(size).offset((page - 1) * size)).all()
    return {"items": [to_item(row) for row in rows], "page": page, "page_size": size, "total": total}


def insert_returning_new_ids(conn, table: sa.Table, rows: list[dict], keys: list[str]) -> list:
    """Insert rows, skipping any that clash on `keys`; return the ids really inserted."""
    if not rows:
        return []
    stmt = _insert_for(conn)(table).on_conflict_do_nothing(index_elements=keys).returning(table.c.id)
    return list(conn.scalars(stmt, rows))


def insert_new_returning(conn, table: sa.Table, rows: list[dict], key: str, returning: list[str]) -> list:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING `returning`, of rows as dicts:
    a row per row really inserted (on PostgreSQL through `_insert_unnest`)."""
    if not rows:
        return []
    if _unnest_takes(conn, table, list(rows[0])):
        return _insert_unnest(conn, table, list(rows[0]), _dict_columns(conn, table, rows),
                              f" ON CONFLICT ({_names(conn, [key])}) DO NOTHING RETURNING {_names(conn, returning)}")
    return conn.execute(_insert_for(conn)(table).on_conflict_do_nothing(index_elements=[key])
                        .returning(*[table.c[name] for name in returning]), rows).all()


def insert_returning_new(conn, table: sa.Table, column: str, values: list) -> list:
    """Insert one-column rows, skipping those already there; return the values really
    inserted. A concurrent transaction inserting the same value makes this one wait for
    its outcome (PostgreSQL) or cannot run at all (SQLite's one writer)."""
    return insert_new_fast(conn, table, [column], [(v,) for v in values], column)


FAST_ROWS = 500  # rows per INSERT of insert_new_fast on SQLite: well under its parameter limit


def insert_new_fast(conn, table: sa.Table, columns: list[str], rows: list[tuple], key: str) -> list:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key, straight to the driver: the
    `key` values really inserted. For the projections' hot paths, where SQLAlchemy's
    per-row parameter processing cost more than the insert (the claim of a batch's
    statement ids, the facts). Values must already be the driver's (`to_driver`). `key`
    must be unique in `table` and its values unique among `rows`."""
    if not rows:
        return []
    quoted = conn.dialect.identifier_preparer.quote(key)
    tail = f" ON CONFLICT ({quoted}) DO NOTHING RETURNING {quoted}"
    if conn.dialect.name == "postgresql":
        return [row[0] for row in _insert_unnest(conn, table, columns, [list(c) for c in zip(*rows, strict=True)],
                                                 tail)]
    head, one = _raw_insert(conn, table, columns)
    inserted: list = []
    for start in range(0, len(rows), FAST_ROWS):
        part = rows[start:start + FAST_ROWS]
        sql = head + ", ".join([one] * len(part)) + tail
        inserted += conn.exec_driver_sql(sql, tuple(v for row in part for v in row)).scalars().all()
    return inserted


def _insert_unnest(conn, table: sa.Table, columns: list[str], values: list[list], tail: str) -> list:
    """PostgreSQL: `INSERT ... SELECT FROM unnest(...)` of one array per column (`values`,
    the driver's values), then `tail` (ON CONFLICT ...); return what RETURNING gives.

    Why not a multi-row VALUES or executemany: VALUES has a placeholder per value and its
    SQL differs with the number of rows, so psycopg parses it anew every time (it caches
    only short queries of few parameters), and executemany dumps row by row. That was a
    third of a rebuild. This SQL is the same for any number of rows, and its parameters,
    one per column, go in binary (`%b`: psycopg's text dumper for lists is Python, five
    times slower)."""
    sql = (f"INSERT INTO {conn.dialect.identifier_preparer.format_table(table)} "
           f"({_names(conn, columns)}) SELECT * FROM unnest({_array_parameters(conn, table, columns)}){tail}")
    result = conn.exec_driver_sql(sql, tuple(_driver_arrays(conn, table, columns, values)))
    return result.all() if result.returns_rows else []


def _array_parameters(conn, table: sa.Table, columns: list[str]) -> str:
    """The placeholders of one binary array per column, cast to the column's type."""
    return ", ".join(f"%b::{table.c[name].type.compile(dialect=conn.dialect)}[]" for name in columns)


def _driver_arrays(conn, table: sa.Table, columns: list[str], values: list[list]) -> list[list]:
    """One list per column as psycopg should dump it: it dumps a list by its first
    value's type, so a float column's ints become floats."""
    return [[None if v is None else float(v) for v in column] if isinstance(table.c[name].type, sa.Float)
            else column for name, column in zip(columns, values, strict=True)]


# Column types whose driver values psycopg dumps as an array that PostgreSQL casts back.
_UNNEST_TYPES = (sa.String, sa.Integer, sa.Float, sa.Boolean, sa.DateTime, sa.Date, sa.LargeBinary)


def _unnest_takes(conn, table: sa.Table, columns: list[str], updating: bool = False) -> bool:
    """Whether rows of these columns can go through one array per column: on PostgreSQL,
    of plain types only, and no other column SQLAlchemy would fill in (its default on an
    insert, its onupdate on an update)."""
    if conn.dialect.name != "postgresql":
        return False
    for column in table.c:
        if column.name not in columns:
            if (column.onupdate if updating else column.default) is not None:
                return False
            continue
        kind = column.type.impl if isinstance(column.type, sa.TypeDecorator) else column.type
        if not isinstance(kind, _UNNEST_TYPES) or isinstance(kind, sa.Enum):
            return False
    return True


def _dict_columns(conn, table: sa.Table, rows: list[dict]) -> list[list]:
    """Rows as dicts to one list of driver values per column (of the first row's keys)."""
    return [[convert(row[name]) for row in rows] for name in rows[0]
            for convert in [to_driver(conn, table.c[name])]]


def _names(conn, columns: list[str]) -> str:
    return ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)


def in_units(agency: sa.ColumnElement, province: sa.ColumnElement | None, units: frozenset[str] | None):
    """Rows of these units, by agency or province (an agency operator's, shared.auth);
    None: every row. The one rule every service's views filter by."""
    if units is None:
        return sa.true()
    return agency.in_(units) if province is None else sa.or_(agency.in_(units), province.in_(units))
