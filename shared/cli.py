"""`learnstream`: the operator's command line (databases, topics, workers, rebuilds, LRS keys, a local run).

Run `learnstream --help`, or `learnstream COMMAND --help`.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import signal
import time

import click

from shared import bus, db, logs
from shared.config import SERVICES, Settings
from shared.consumer import ProjectionRunner, RebuildFailed
from shared.logs import configure_logging
from shared.service import available, load
from shared.worker import PARTS

service_names = click.Choice(SERVICES)


def _selected(services: tuple[str, ...]) -> tuple[str, ...]:
    return services or available()


class _Commands(click.Group):
    """learnstream's own commands, and those a service brings (ServiceSpec.commands:
    progress's lrs-credentials), loaded only when one is asked for or all are listed."""

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *_service_commands()})

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or _service_commands().get(name)


@functools.cache
def _service_commands() -> dict[str, click.Command]:
    return {command.name: command for name in available() for command in load(name).commands}


@click.group(cls=_Commands, help=__doc__)
def main() -> None:
    pass


def _until_reachable(what: str, where: str, attempt, wait_seconds: float):
    """Run `attempt` until it succeeds; while the database or broker cannot be reached
    (not up yet at start-up: a container started before its dependencies), say so in one
    line and try again with backoff for up to `wait_seconds`, then stop with a clear
    message (exit 1), never a traceback. Any other error is a bug and surfaces as one."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + wait_seconds
    delay = 1.0
    while True:
        try:
            return attempt()
        except Exception as exc:
            if isinstance(exc, KafkaException):
                reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
            elif db.unavailable(exc):
                reason = logs.described(exc)
            else:
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise click.ClickException(f"{what}: cannot reach {where} ({reason}); gave up after "
                                           f"{wait_seconds:.0f} s (--wait)") from None
            pause = min(delay, left)
            click.echo(f"{what}: cannot reach {where} ({reason}); retrying in {pause:.0f} s", err=True)
            time.sleep(pause)
            delay = min(delay * 2, 10)


def _database_where(url: str) -> str:
    """The database's server and name, never its password."""
    from sqlalchemy.engine import make_url

    return f"the database {make_url(url).render_as_string(hide_password=True)}"


_wait_option = click.option("--wait", "wait_seconds", type=float, default=60, show_default=True,
                            help="Seconds to keep retrying while the database or broker cannot be reached "
                                 "(0: fail at once).")


@main.command(help="Create each service's database if needed and apply its migrations (all services by default).")
@click.argument("services", nargs=-1, type=service_names)
@_wait_option
def migrate(services, wait_seconds):
    for name in _selected(services):
        settings = Settings.from_env(name)
        _until_reachable(name, _database_where(settings.database_url),
                         functools.partial(db.migrate, settings.database_url, load(name).migrations), wait_seconds)
        click.echo(f"{name}: database at the newest schema")


@main.command(help="Write a new Alembic migration for a service from the change in its tables.py.")
@click.argument("service", type=service_names)
@click.option("-m", "--message", required=True, help="What the migration changes.")
@click.option("--branch", default=None,
              help="The Alembic branch, where the database has several (progress: progress or lrs).")
def revision(service, message, branch):
    settings = Settings.from_env(service)
    db.new_revision(settings.database_url, load(service).migrations, message, branch)


@main.command(help="Create the Kafka topics each service produces and consumes (all services by default).")
@click.argument("services", nargs=-1, type=service_names)
@_wait_option
def topics(services, wait_seconds):
    for name in _selected(services):
        settings = Settings.from_env(name)
        wanted = load(name).topics(settings)
        _until_reachable(name, f"the broker at {settings.kafka_bootstrap_servers}",
                         functools.partial(bus.ensure_topics, settings, wanted), wait_seconds)
        click.echo(f"{name}: {', '.join(wanted) or 'no topics'}")


@main.command(help="Run a service's outbox relay and projections until SIGTERM or Ctrl-C.")
@click.argument("service", type=service_names)
@click.option("--only", type=click.Choice(PARTS), default=None,
              help="Run only the outbox relay, or only the projections and timers (start one process "
                   "of each). Default: both in this process.")
def worker(service, only):
    from shared.worker import run_worker

    settings = Settings.from_env(service)
    configure_logging(service, settings.log_level)
    spec = load(service)
    # What is loaded now lives as long as the process: spare the collector rescanning it
    # (tens of ms per oldest-generation pass, a stall of the relay or the consumer).
    gc.freeze()
    run_worker(settings, spec, parts=(only,) if only else PARTS)


@main.command(help="Drop a service's read models and replay its topics from offset zero. "
                   "Stop the service's worker first; it resumes where the rebuild ends.")
@click.argument("service", type=service_names)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes replaying side by side, each a share of the partitions. Measure before relying on "
                   "more than one: see docs/performance.md.")
def rebuild(service, progress, jobs):
    settings = Settings.from_env(service)
    configure_logging(service, "WARNING")
    spec = load(service)
    if spec.projection is None:
        raise click.UsageError(f"{service} has no read models to rebuild")
    # No statement limit: a rebuild deletes whole read models, which may take longer.
    engine = db.create_engine(settings.database_url,
                              timeouts=dataclasses.replace(settings.database_timeouts, statement_seconds=0))
    try:
        runner = ProjectionRunner(settings, engine, spec.projection(settings), spec.offsets, spec.processed)
        try:
            count = runner.rebuild(progress=progress, jobs=jobs)
        except RebuildFailed as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    phases = ", ".join(f"{name.replace('_', ' ')} {seconds:.1f} s"
                       for name, seconds in runner.last_rebuild_seconds.items())
    click.echo(f"{service}: rebuilt from {count} records ({runner.last_rebuild_rate:,.0f} records/s; {phases})")


def _runner(service: str):
    settings = Settings.from_env(service)
    configure_logging(service, "WARNING")
    spec = load(service)
    if spec.projection is None:
        raise click.UsageError(f"{service} has no projections, so no dead letters")
    engine = db.create_engine(settings.database_url)
    return ProjectionRunner(settings, engine, spec.projection(settings), spec.offsets, spec.processed)


@main.group("dead-letters", help="A service's quarantine: the records its projections found unprocessable.")
def dead_letters() -> None:
    pass


@dead_letters.command("list", help="Counts by reason, then each dead letter still in quarantine.")
@click.argument("service", type=service_names)
@click.option("--reason", default=None, help="Only those whose reason contains this text.")
def dead_letters_list(service, reason):
    from shared import dead_letters as quarantine

    runner = _runner(service)
    try:
        letters = [d for d in quarantine.quarantined(runner) if reason is None or reason in d.reason]
    finally:
        runner.engine.dispose()
    click.echo(f"{service}: {len(letters)} dead letters in quarantine ({runner.settings.dead_letter_topic})")
    for text, count in quarantine.counts_by_reason(letters).most_common():
        click.echo(f"  {count:>7}  {text}")
    for d in letters:
        click.echo(f"  {d.topic} partition {d.partition} offset {d.offset}  (dead letter {d.where})  {d.reason}")


@dead_letters.command("replay", help="Re-apply dead letters after a fix (idempotent by statement id); "
                                     "what still fails stays in quarantine with its new reason. "
                                     "Stop the service's worker first.")
@click.argument("service", type=service_names)
@click.option("--reason", default=None, help="Only those whose reason contains this text.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def dead_letters_replay(service, reason, progress):
    from shared import dead_letters as quarantine

    runner = _runner(service)
    try:
        letters = [d for d in quarantine.quarantined(runner) if reason is None or reason in d.reason]
        outcome = quarantine.replay(runner, letters, progress=progress)
    finally:
        runner.engine.dispose()
    click.echo(f"{service}: {outcome.applied} applied, {outcome.still_failing} still failing (kept in quarantine)")


@main.command(help="Run every service (gunicorn) and its worker on this machine until Ctrl-C or SIGTERM, "
                   "restarting any part that exits. Expects a broker at KAFKA_BOOTSTRAP_SERVERS "
                   "(`make run` starts one). All services by default.")
@click.argument("services", nargs=-1, type=service_names)
def run(services):
    import time

    from shared.stack import PortInUse, Stack, ensure_credentials

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    configure_logging("stack", "INFO")  # the supervisor's exits and restarts, as JSON on stderr
    stack = Stack(services=_selected(services))
    credentials_file = ensure_credentials(stack.env)
    try:
        stack.check_ports()  # before the migrations: a second `make run` fails in a moment, not after them
        click.echo(f"kafka: {stack.settings('enrollment').kafka_bootstrap_servers}; preparing databases and topics...")
        stack.prepare()
        stack.start()
    except PortInUse as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("stopped.")
        return
    try:
        click.echo("\nlearnstream is running:")
        for name in stack.services:
            settings = stack.settings(name)
            click.echo(f"  {name:<14} {stack.url(name)}  (API docs: {stack.url(name)}/openapi.json)  "
                       f"database: {settings.database_url.split('@')[-1]}")
        if "progress" in stack.services:
            progress = stack.url("progress")
            click.echo(f"  dashboard      {progress}/dashboard")
            click.echo(f"  xAPI LRS       {progress}/xapi  (client keys: learnstream lrs-credentials create --help)")
        if "forwarding" in stack.services:
            click.echo(f"  forwarding     {stack.url('forwarding')}/forwarding  (lag per target; POST /targets)")
        if credentials_file:
            click.echo(f"  operator credentials (HTTP Basic key:secret) are in {credentials_file}")
        click.echo("A part that exits is restarted; Ctrl-C stops everything.")
        while True:  # until Ctrl-C or SIGTERM: a part that exits is restarted, the rest keep serving
            stack.supervise()
            time.sleep(0.2)
    except KeyboardInterrupt:
        click.echo("stopping...")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
