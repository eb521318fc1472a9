"""The progress service's Flask app (gunicorn: `services.progress.app:create_app()`)."""
from __future__ import annotations

from flask import Flask

from services.progress import dashboard, tables
from services.progress.api import blp
from services.progress.cmi5 import api as cmi5_api
from services.progress.cmi5.lms import Cmi5Lms
from services.progress.lrs import web as lrs_web
from services.progress.lrs.deps import Lrs
from shared import auth, db, xapi
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
        accounts=tables.accounts, audit_log=tables.audit_log, blueprints=[blp, cmi5_api.blp, cmi5_api.public],
    )
    app.extensions["progress_clock"] = clock
    # The cmi5 LMS: its statements go where the LRS's go; the LRS asks it about its
    # session tokens (deps.SessionHook).
    lms = Cmi5Lms.for_service(engine, settings)
    app.extensions["cmi5"] = lms
    dashboard.install(app, settings)
    # The xAPI LRS (its own auth, errors and content types), given what it needs.
    lrs = Lrs.create(engine, outbox=tables.outbox, topic=settings.topic("lrs"),
                     cursor_secret=settings.lrs_cursor_secret, sessions=lms,
                     accounts=app.extensions[auth.EXTENSION])
    app.register_blueprint(lrs_web.blueprint(lrs))
    # Statement POSTs skip Flask's request machinery.
    app.wsgi_app = lrs_web.StatementIngest(lrs, app.wsgi_app, settings.service)
    return app
