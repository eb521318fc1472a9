"""The forwarding service's Flask app (gunicorn: `services.forwarding.app:create_app()`)."""
from __future__ import annotations

from functools import partial

from flask import Flask

from services.forwarding import api
from services.forwarding import tables as t
from services.forwarding.commands import ForwardingCommands
from services.forwarding.repository import ForwardingRepository
from shared import db
from shared.config import Settings
from shared.http import create_service_app
from shared.logs import configure_logging
from shared.unit_of_work import SqlUnitOfWork


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("forwarding")
    configure_logging(settings.service, settings.log_level)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    app = create_service_app(
        settings, engine, title="learnstream forwarding",
        description="Durable statement forwarding to other LRSs (a national or ministry LRS): targets configured "
                    "at run time, each with its own offsets, capped backoff, per-learner order, a quarantine of "
                    "refused statements that can be replayed, and its lag (/forwarding, /metrics).",
        accounts=t.accounts, audit_log=t.audit_log, blueprints=[api.blp],
        commands=ForwardingCommands(partial(SqlUnitOfWork, engine, None, settings.own_topic,
                                            partial(ForwardingRepository, box=settings.secret_box()))),
    )
    return app
