"""`learnstream forwarding`: the operator's view of the targets and their quarantine from
a shell, beside the HTTP API (ServiceSpec.commands puts it under `learnstream`). It reads
and writes what the API does, through the same queries and commands; the running
forwarder picks a replay up before its next batch."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import click
import sqlalchemy as sa

from services.forwarding import queries
from services.forwarding import tables as t
from services.forwarding.commands import ForwardingCommands
from services.forwarding.repository import ForwardingRepository
from shared import db
from shared.config import Settings
from shared.unit_of_work import SqlUnitOfWork


def _engine(settings: Settings):
    # Migrated first, as `lrs-credentials` does: on a new machine the tables may not exist yet.
    db.migrate(settings.database_url, Path(__file__).parent / "migrations")
    return db.create_engine(settings.database_url, timeouts=settings.database_timeouts)


def _target_id(engine, name_or_id: str) -> str:
    with db.reading(engine) as conn:
        found = conn.scalar(sa.select(t.targets.c.id).where(
            sa.or_(t.targets.c.id == name_or_id, t.targets.c.name == name_or_id)))
    if found is None:
        raise click.BadParameter(f"no target named or with the id {name_or_id!r}", param_hint="TARGET")
    return found


@click.group("forwarding", help="Forwarding targets (other LRSs): their status and the statements they refused.")
def forwarding() -> None:
    pass


@forwarding.command("targets", help="Every target with its status: delivered, lag, quarantined, last error.")
def forwarding_targets():
    engine = _engine(Settings.from_env("forwarding"))
    try:
        items = queries.lag_page(engine)
    finally:
        engine.dispose()
    if not items:
        click.echo("no targets")
    for item in items:
        status = item["status"] or {}
        state = "disabled" if not item["enabled"] else "stopped" if status.get("stopped") else \
            "retrying" if status.get("retrying") else "forwarding"
        click.echo(f"{item['name']}  {item['url']}  {state}  delivered {status.get('delivered', 0)}  "
                   f"lag {status.get('lag', 0)}  quarantined {status.get('quarantined', 0)}"
                   + (f"  last error: {status['last_error']}" if status.get("last_error") else ""))


@forwarding.command("quarantine", help="The statements TARGET (its name or id) refused for good, with its answer.")
@click.argument("target")
@click.option("--resolved", is_flag=True, help="Those replayed and delivered since, instead.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000), help="At most this many.")
def forwarding_quarantine(target, resolved, limit):
    engine = _engine(Settings.from_env("forwarding"))
    try:
        page = queries.quarantine(engine, _target_id(engine, target),
                                  {"resolved": resolved, "page": 1, "page_size": limit})
    finally:
        engine.dispose()
    click.echo(f"{target}: {page['total']} {'resolved' if resolved else 'in quarantine'}"
               + (f" (showing {len(page['items'])})" if page["total"] > len(page["items"]) else ""))
    for row in page["items"]:
        click.echo(f"  {row['statement_id']}  {row['topic']} partition {row['partition']} offset {row['offset']}  "
                   f"HTTP {row['status'] or '-'}  tries {row['attempts']}"
                   + ("  replay asked" if row["replay_requested_at"] else "")
                   + f"  {(row['response'] or '')[:200]}")


@forwarding.command("replay", help="Send TARGET's quarantined statements again once the target is fixed "
                                   "(all, or those given with --statement); the forwarder sends them before its "
                                   "next batch, and what is refused again stays with its new answer.")
@click.argument("target")
@click.option("--statement", "statement_ids", multiple=True, help="A statement id (repeatable); default: all.")
def forwarding_replay(target, statement_ids):
    settings = Settings.from_env("forwarding")
    engine = _engine(settings)
    try:
        commands = ForwardingCommands(partial(SqlUnitOfWork, engine, None, settings.own_topic,
                                              partial(ForwardingRepository, box=settings.secret_box())))
        marked = commands.request_replay(_target_id(engine, target), list(statement_ids) or None)
    finally:
        engine.dispose()
    click.echo(f"{target}: {marked} statements marked for replay")
