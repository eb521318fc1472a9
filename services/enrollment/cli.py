"""`learnstream accounts`: the accounts every service checks (shared.accounts), kept by
the enrollment service (ServiceSpec.commands puts it under `learnstream`). Each change
goes through the same commands as the admin API, so it reaches every service over the
accounts topic once enrollment's relay runs (`learnstream worker enrollment`)."""
from __future__ import annotations

import getpass
import json
from functools import partial

import click

from services.enrollment import queries
from services.enrollment import tables as t
from services.enrollment.account_commands import AccountCommands
from services.enrollment.repository import AccountRepository
from shared import audit, db
from shared.accounts import LOCALES, ROLES, XAPI_SCOPES
from shared.config import Settings
from shared.errors import DomainError
from shared.service import load
from shared.unit_of_work import SqlUnitOfWork

CLI_OPERATOR = "cli"


def _run(action, audited: str | None = None, key: str | None = None):
    """Run `action(commands, engine)` against enrollment's database, migrated first; a
    change (`audited`: what it is) goes in enrollment's audit trail, by `cli:<OS user>`."""
    settings = Settings.from_env("enrollment")
    db.migrate(settings.database_url, load("enrollment").migrations)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    try:
        commands = AccountCommands(partial(SqlUnitOfWork, engine, t.outbox, settings.topic("accounts"),
                                           AccountRepository))
        result = action(commands, engine)
        if audited is not None:
            account = result[0] if isinstance(result, tuple) else result
            audit.write(engine, t.audit_log, actor=f"{CLI_OPERATOR}:{getpass.getuser()}", role="cli",
                        action=f"learnstream accounts {audited}", target={"key": key or account.key},
                        status=0, remote_addr="local")
        return result
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        engine.dispose()


def _show(account: dict, secret: str | None = None) -> None:
    for name in ("key", "role", "display_name", "units", "cohorts", "scopes", "locale", "disabled", "version"):
        value = account[name]
        click.echo(f"{name + ':':<14}{', '.join(value) if isinstance(value, list) else value}")
    if secret is not None:
        click.echo(f"{'secret:':<14}{secret}\n(the secret is not stored in clear and is not shown again; keep it now)")


ROLE_HELP = ("campaign_admin: everything; programme_manager: programmes, cohorts, enrolments, tests, rules; "
             "agency_operator: reads of its units (--unit); auditor: reads everything, changes nothing; "
             "lms_client: xAPI (--scope) and the final tests of its cohorts (--cohort).")
_role = click.option("--role", type=click.Choice(ROLES), help=ROLE_HELP)
_units = click.option("--unit", "units", multiple=True, help="An agency or province an agency operator sees "
                      "(repeat for several).")
_cohorts = click.option("--cohort", "cohorts", multiple=True, help="A cohort id an LMS client may run final "
                        "tests for (repeat for several).")
_scopes = click.option("--scope", "scopes", multiple=True, type=click.Choice(XAPI_SCOPES),
                       help="An xAPI scope of an LMS client (repeat for several).")
_name = click.option("--name", "display_name", help="Who the account is for (shown in the audit trail).")
_locale = click.option("--locale", type=click.Choice(LOCALES), help="The dashboard's language for the account.")


@click.group("accounts", help="Accounts and their roles, checked by every service (the enrollment service keeps "
                              "them; a change reaches the other services within seconds over the accounts topic).")
def accounts_cli() -> None:
    pass


@accounts_cli.command("list", help="Every account, with its role and limits (never a secret).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_accounts(as_json):
    page = _run(lambda _, engine: queries.accounts(engine, {"page": 1, "page_size": 10**6}))
    for account in page["items"]:
        if as_json:
            click.echo(json.dumps(account, default=str))
        else:
            limits = account["units"] or account["cohorts"] or []
            state = "disabled" if account["disabled"] else "active"
            click.echo(f"{account['key']:<24} {account['role']:<18} {state:<9} {', '.join(limits)}")


@accounts_cli.command("create", help="Create an account; its secret is shown once.")
@click.option("--role", type=click.Choice(ROLES), required=True, help=ROLE_HELP)
@click.option("--key", help="The key (default: a random one).")
@_name
@_units
@_cohorts
@_scopes
@_locale
def create(role, key, display_name, units, cohorts, scopes, locale):
    data = {"role": role, "key": key, "display_name": display_name, "units": list(units) or None,
            "cohorts": list(cohorts) or None, "scopes": list(scopes), "locale": locale}
    account, secret = _run(lambda commands, _: commands.create(data, CLI_OPERATOR), "create")
    _show(account.as_public(), secret)


@accounts_cli.command("change", help="Change an account's role, units, cohorts, scopes, name or locale; "
                                     "what is not given stays (a new role drops the old one's limits).")
@click.argument("key")
@_role
@_name
@_units
@_cohorts
@_scopes
@_locale
def change(key, role, display_name, units, cohorts, scopes, locale):
    changes = {name: value for name, value in (("role", role), ("display_name", display_name), ("locale", locale),
                                               ("units", list(units)), ("cohorts", list(cohorts)),
                                               ("scopes", list(scopes))) if value}
    if not changes:
        raise click.UsageError("nothing to change: give --role, --name, --unit, --cohort, --scope or --locale")
    _show(_run(lambda commands, _: commands.change(key, changes, CLI_OPERATOR), "change", key).as_public())


@accounts_cli.command("rotate", help="Give an account a new secret (shown once); the old one stops working.")
@click.argument("key")
def rotate(key):
    account, secret = _run(lambda commands, _: commands.rotate_secret(key, CLI_OPERATOR), "rotate", key)
    _show(account.as_public(), secret)


@accounts_cli.command("disable", help="Disable an account: every service refuses its key within seconds.")
@click.argument("key")
def disable(key):
    _show(_run(lambda commands, _: commands.disable(key, CLI_OPERATOR), "disable", key).as_public())
