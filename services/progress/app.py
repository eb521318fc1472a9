"""The progress service's Flask app (gunicorn: `services.progress.app:create_app()`)."""
from __future__ import annotations

from flask import Flask

from services.progress.api import blp
from services.progress.lrs.api import StatementIngest
from services.progress.lrs.api import bp as lrs_bp
from shared import db, xapi
from shared.config import Settings
from shared.http import create_service_app
from shared.logs import configure_logging


def create_app(settings: Settings | None = None, clock=xapi.utc_now) -> Flask:
    """`clock` decides what is overdue; tests pass a controllable one."""
    settings = settings or Settings.from_env("progress")
    configure_logging(settings.service, settings.log_level)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    app = create_service_app(
        settings, engine, title="learnstream progress",
        description="Learner and cohort progress, projected from the learnstream topics.",
        blueprints=[blp],
    )
    app.extensions["progress_clock"] = clock
    app.register_blueprint(lrs_bp)  # the xAPI LRS: its own auth, errors and content types
    app.wsgi_app = StatementIngest(app, app.wsgi_app)  # statement POSTs skip Flask's request machinery
    return app
