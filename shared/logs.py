"""One structured-logging setup for every process: JSON lines on stderr.

Learner identifiers are personal data and secrets must never be logged: log learner
*keys* (hashes), never emails or names, and never request headers.
"""
from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.exc import SQLAlchemyError

_REDACTED_KEYS = {"password", "secret", "authorization", "credentials", "email", "mbox"}


class _RedactSecrets(logging.Filter):
    """Last line of defence: a field named like a secret is blanked whatever put it there."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in list(vars(record)):
            if key.lower() in _REDACTED_KEYS:
                setattr(record, key, "[redacted]")
        return True


def described(exc: BaseException) -> str:
    """An error for the log and the operator's terminal. A database error by its driver
    class and SQLSTATE only: its message can carry a learner's identifier (PostgreSQL's
    DETAIL names the conflicting key's value), even with the statement's parameters
    hidden (shared.db.create_engine). Short, so it fits a pipe's buffer."""
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None) or exc
        state = getattr(orig, "sqlstate", None)
        return f"{type(orig).__name__}{f' {state}' if state else ''}"
    return f"{type(exc).__name__}: {exc}"[:2000]


def traceback_is_safe(exc: BaseException) -> bool:
    """Whether a log may carry the error's traceback: a database error's message (and so
    its traceback) can name learners, as `described` says."""
    return not isinstance(exc, SQLAlchemyError)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
