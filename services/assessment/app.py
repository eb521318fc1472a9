"""The assessment service's Flask app (gunicorn: `services.assessment.app:create_app()`)."""
from __future__ import annotations

from functools import partial

from flask import Flask

from services.assessment import tables as t
from services.assessment.api import blp
from services.assessment.commands import AssessmentCommands
from services.assessment.repository import AssessmentRepository
from shared import db
from shared.config import Settings
from shared.http import create_service_app
from shared.logs import configure_logging
from shared.unit_of_work import SqlUnitOfWork


def commands(settings: Settings, engine) -> AssessmentCommands:
    """The write side over the service's database (the app and the expiry timer use it)."""
    return AssessmentCommands(partial(SqlUnitOfWork, engine, t.outbox, settings.own_topic, AssessmentRepository))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("assessment")
    configure_logging(settings.service, settings.log_level)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    return create_service_app(
        settings, engine, title="learnstream assessment",
        description="Question banks, final tests, attempts and pass/fail results. Every step is published "
                    "as an xAPI statement to the learnstream.assessment.v1 topic.",
        accounts=t.accounts, audit_log=t.audit_log, blueprints=[blp], commands=commands(settings, engine),
    )
