"""Where each service keeps the accounts (shared.accounts) and its audit trail.

Every service has an `accounts` table of the same shape in its own database: in
enrollment it is the accounts' state, written by its commands; in the others it is a
read model of the `learnstream.accounts.v1` topic, filled by `HANDLERS` (registered in
each service's projections.py) and rebuilt with the rest. `audit_log` is each service's
own record of the changes made through it (shared.audit).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import accounts, db
from shared.accounts import Account
from shared.db import UtcDateTime
from shared.errors import Unprocessable
from shared.events import EventType

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def define_accounts_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "accounts", metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        # Joined by U+001F (a unit name may hold spaces); NULL: not limited (units: every unit;
        # cohorts: not an LMS client).
        sa.Column("units", sa.Text(), nullable=True),
        sa.Column("cohorts", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False, server_default=""),
        sa.Column("locale", sa.String(20), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False, server_default=""),
    )


def define_audit_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "audit_log", metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        # "POST /cohorts/<cohort_id>/enrolments": the route, not the path.
        sa.Column("action", sa.String(300), nullable=False),
        # The ids in the path, "cohort_id=…" (never learner data: paths carry ids only).
        sa.Column("target", sa.String(1000), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("remote_addr", sa.String(100), nullable=True),
    )


# Units and cohorts are joined by the unit separator: a name may hold spaces or commas.
_SEP = "\x1f"


def _joined(values: frozenset[str] | None) -> str | None:
    return None if values is None else _SEP.join(sorted(values))


def _split(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(v for v in text.split(_SEP) if v)


def row_of(account: Account) -> dict:
    return {"key": account.key, "role": account.role, "display_name": account.display_name,
            "secret_hash": account.secret_hash, "units": _joined(account.units),
            "cohorts": _joined(account.cohorts), "scopes": " ".join(sorted(account.scopes)),
            "locale": account.locale, "disabled": account.disabled, "version": account.version,
            "updated_at": account.updated_at, "updated_by": account.updated_by}


def account_of(row) -> Account:
    return Account(key=row.key, role=row.role, display_name=row.display_name, secret_hash=row.secret_hash,
                   units=_split(row.units), cohorts=_split(row.cohorts), scopes=frozenset(row.scopes.split()),
                   locale=row.locale, disabled=bool(row.disabled), version=row.version,
                   updated_at=row.updated_at, updated_by=row.updated_by)


def all_accounts(conn: Connection, table: sa.Table) -> list[Account]:
    return [account_of(row) for row in conn.execute(sa.select(table).order_by(table.c.key))]


def store(conn: Connection, table: sa.Table, changed: list[Account]) -> None:
    """Keep, of each account, the highest version seen (records of one account may come
    from several partitions: the key is who changed it)."""
    newest: dict[str, Account] = {}
    for account in changed:
        if account.key not in newest or account.version > newest[account.key].version:
            newest[account.key] = account
    if not newest:
        return
    stored = {row.key: row.version for row in conn.execute(
        sa.select(table.c.key, table.c.version).where(table.c.key.in_(list(newest))))}
    rows = [row_of(a) for a in newest.values() if a.version > stored.get(a.key, 0)]
    db.upsert(conn, table, rows, ["key"])


def handlers(table: sa.Table) -> dict:
    """The projection handlers of the accounts topic for a service whose accounts table
    is `table`: registered in the service's projections.py with its other handlers."""

    def on_account_changed(conn: Connection, statements: list[dict]) -> None:
        parsed = []
        for statement in statements:
            try:
                parsed.append(accounts.from_statement(statement))
            except (KeyError, TypeError, ValueError) as exc:
                raise Unprocessable(f"not an account.changed statement: {type(exc).__name__}: {exc}") from None
        store(conn, table, parsed)

    return {EventType.ACCOUNT_CHANGED: on_account_changed}
