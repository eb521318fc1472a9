"""The Blueprint every service's routes use (re-exported by shared.http)."""
from __future__ import annotations

import flask_smorest as smorest
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser


class _StrictQueryParser(FlaskParser):
    """A query parameter no schema names is a 422 naming it, not silently ignored
    (webargs ignores them by default): `?page_sise=50` must not quietly mean 100."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE}


class Blueprint(smorest.Blueprint):
    """flask-smorest's Blueprint, with unknown query parameters refused."""

    ARGUMENTS_PARSER = _StrictQueryParser()
