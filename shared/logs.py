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


class _Redact(logging.Filter):
    """Last line of defence, whatever put it there: a field named like a secret is
    blanked, and a traceback that holds a database error anywhere in its chain is
    replaced by the errors' classes (`described`): its text can name learners."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in list(vars(record)):
            if key.lower() in _REDACTED_KEYS:
                setattr(record, key, "[redacted]")
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if exc is not None and not traceback_is_safe(exc):
            record.exc_info, record.exc_text = None, None
            record.error_chain = [described(e) for e in _chain(exc)]
        return True


def _chain(exc: BaseException) -> list[BaseException]:
    """The error and those it was raised from or while handling, as a traceback shows them."""
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return found


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
    """Whether a log may carry the error's traceback: not if a database error is in its
    chain, whose message (and so the traceback) can name learners, as `described` says."""
    return not any(isinstance(e, SQLAlchemyError) for e in _chain(exc))


def handler(service: str, stream=None) -> logging.Handler:
    """JSON lines on `stream` (stderr), each naming the service, redacted (`_Redact`)."""
    made = logging.StreamHandler(stream or sys.stderr)
    made.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    made.addFilter(_Redact())
    return made


def configure_logging(service: str, level: str = "INFO") -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler(service)]
    root.setLevel(level)
