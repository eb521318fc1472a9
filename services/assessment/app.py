"""The assessment service's Flask app (gunicorn: `services.assessment.app:create_app()`)."""
from __future__ import annotations

from flask import Flask, jsonify

from services.assessment.api import blp
from services.assessment.domain import InvalidBank
from services.assessment.handlers import AssessmentService
from shared import db
from shared.config import Settings
from shared.http import create_service_app
from shared.logs import configure_logging


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("assessment")
    configure_logging(settings.service, settings.log_level)
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    app = create_service_app(
        settings, engine, title="learnstream assessment",
        description="Question banks, final tests, attempts and pass/fail results. Every step is published "
                    "as an xAPI statement to the learnstream.assessment.v1 topic.",
        blueprints=[blp],
    )

    @app.errorhandler(InvalidBank)
    def _invalid_bank(exc: InvalidBank):
        # Every problem at once, in the same shape as a marshmallow 422.
        return jsonify(code=422, status="Unprocessable Entity", message=exc.message,
                       errors={"json": exc.problems}), 422

    app.extensions["assessment"] = AssessmentService(settings, engine)
    return app
