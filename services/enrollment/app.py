"""The enrollment service's Flask app (gunicorn: `services.enrollment.app:create_app()`)."""
from __future__ import annotations

from functools import partial

from flask import Flask

from services.enrollment import admin
from services.enrollment import tables as t
from services.enrollment.account_commands import AccountCommands
from services.enrollment.api import blp
from services.enrollment.commands import EnrollmentCommands
from services.enrollment.repository import AccountRepository, EnrollmentRepository
from shared import audit, db, web_session
from shared.config import Settings
from shared.http import create_service_app
from shared.logs import configure_logging
from shared.unit_of_work import SqlUnitOfWork


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("enrollment")
    configure_logging(settings.service, settings.log_level)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    new_uow = partial(SqlUnitOfWork, engine, t.outbox, settings.own_topic, EnrollmentRepository)
    new_account_uow = partial(SqlUnitOfWork, engine, t.outbox, settings.topic("accounts"), AccountRepository)
    app = create_service_app(
        settings, engine, title="learnstream enrollment",
        description="Programmes, cohorts and enrolments. Every change is published as an xAPI "
                    "statement to the learnstream.enrollment.v1 topic.",
        accounts=t.accounts, audit_log=t.audit_log, blueprints=[blp],
        commands=EnrollmentCommands(new_uow, settings.activity_base),
    )
    app.extensions["account_commands"] = AccountCommands(new_account_uow)
    # The accounts' admin pages, signed in with the dashboard's session (shared.web_session).
    web_session.install(app, settings)
    app.register_blueprint(admin.bp)
    audit.install(app, engine, t.audit_log, {admin.bp.name})
    return app
