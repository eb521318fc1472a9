"""The log handler every process uses (shared.logs): nothing it writes names a learner
or a secret, whatever the code that logged passed it."""
from __future__ import annotations

import io
import logging

import orjson
import sqlalchemy as sa

from shared import logs

ACTOR = "mailto:someone@example.org"


def _logged(log_call) -> dict:
    out = io.StringIO()
    log = logging.getLogger(f"test-logs-{id(out)}")
    log.propagate = False
    log.addHandler(logs.handler("test", out))
    log.setLevel(logging.INFO)
    log_call(log)
    return orjson.loads(out.getvalue())


def _duplicate_key() -> sa.exc.IntegrityError:
    # What psycopg's message says of a duplicate key, parameters hidden or not.
    return sa.exc.IntegrityError("INSERT INTO t (actor) VALUES (%(actor)s)", {}, Exception(
        f'duplicate key value violates unique constraint "t_pkey"\nDETAIL:  Key (actor)=({ACTOR}) already exists.'),
        hide_parameters=True)


def test_a_database_errors_traceback_becomes_its_class():
    def call(log):
        try:
            raise _duplicate_key()
        except sa.exc.IntegrityError:
            log.exception("timer failed")
    line = _logged(call)
    assert ACTOR not in orjson.dumps(line).decode()
    assert line["message"] == "timer failed"
    assert line["error_chain"] == ["Exception"] and "exc_info" not in line


def test_an_error_raised_from_a_database_error_hides_the_chain():
    def call(log):
        try:
            try:
                raise _duplicate_key()
            except sa.exc.IntegrityError as exc:
                raise RuntimeError("could not store") from exc
        except RuntimeError:
            log.exception("unhandled error")
    line = _logged(call)
    assert ACTOR not in orjson.dumps(line).decode()
    assert line["error_chain"] == ["RuntimeError: could not store", "Exception"]


def test_any_other_error_keeps_its_traceback():
    def call(log):
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("loop failed")
    line = _logged(call)
    assert "ValueError: bad value" in line["exc_info"] and "error_chain" not in line


def test_a_field_named_like_a_secret_is_blanked():
    line = _logged(lambda log: log.info("signed in", extra={"password": "hunter2", "email": ACTOR}))
    assert line["password"] == "[redacted]" and line["email"] == "[redacted]"
