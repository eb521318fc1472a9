"""One structured-logging setup for every process: JSON lines on stderr.

Learner identifiers are personal data and secrets must never be logged: log learner
*keys* (hashes), never emails or names, and never request headers.
"""
from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

_REDACTED_KEYS = {"password", "secret", "authorization", "credentials", "email", "mbox"}


class _RedactSecrets(logging.Filter):
    """Last line of defence: a field named like a secret is blanked whatever put it there."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in list(vars(record)):
            if key.lower() in _REDACTED_KEYS:
                setattr(record, key, "[redacted]")
        return True


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
