"""`learnstream lrs-credentials`: the LRS's client keys (ServiceSpec.commands puts it
under the `learnstream` command, which itself imports no service)."""
from __future__ import annotations

import click

from services.progress.lrs import auth
from shared import db
from shared.config import Settings
from shared.service import load


@click.group("lrs-credentials", help="xAPI LRS client credentials (the progress service's /xapi).")
def lrs_credentials() -> None:
    pass


@lrs_credentials.command("create", help="Create a key and secret with xAPI scopes; the secret is shown once.")
@click.option("--name", required=True, help="Who the credential is for (becomes the statements' authority name).")
@click.option("--scope", "scopes", multiple=True, default=("all",), show_default=True,
              help="statements/write, statements/read, statements/read/mine, statements/void/any (void other "
                   "credentials' statements; without it a key voids only its own), state, define, profile, "
                   "all/read, all.")
def lrs_credentials_create(name, scopes):
    settings = Settings.from_env("progress")
    db.migrate(settings.database_url, load("progress").migrations)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    try:
        key, secret = auth.create(engine, name, list(scopes))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    finally:
        engine.dispose()
    click.echo(f"key:    {key}\nsecret: {secret}\n(the secret is not stored in clear; keep it now)")
