"""The certification service's Flask app (gunicorn: `services.certification.app:create_app()`)."""
from __future__ import annotations

from functools import partial

from flask import Flask

from services.certification import api, public
from services.certification import tables as t
from services.certification.commands import CertificationCommands
from services.certification.repository import CertificationRepository
from shared import db
from shared.config import Settings
from shared.http import create_service_app
from shared.logs import configure_logging
from shared.unit_of_work import SqlUnitOfWork


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("certification")
    configure_logging(settings.service, settings.log_level)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    new_uow = partial(SqlUnitOfWork, engine, t.outbox, settings.own_topic, CertificationRepository)
    app = create_service_app(
        settings, engine, title="learnstream certification",
        description="Completion certificates: issued exactly once when a learner completes every required "
                    "module and passes the final test in time, published as `earned` statements to "
                    "learnstream.certification.v1; revocation, re-issue, PDFs, exports and public verification.",
        accounts=t.accounts, audit_log=t.audit_log, blueprints=[api.blp, public.blp],
        commands=CertificationCommands(new_uow, settings.activity_base),
    )
    app.config["CERTIFICATION_PUBLIC_URL"] = settings.public_url
    return app
