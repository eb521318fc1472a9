"""Failures every service raises: domain failures (mapped to HTTP once in shared.http)
and the one that says a record on the bus can never be applied.

Kept free of Flask and Kafka so domain modules can raise them.
"""
from __future__ import annotations

import functools


class DomainError(Exception):
    """A rule was broken (HTTP 422). `field` names the input at fault, if one is;
    `fields` maps every input at fault to its messages, when a rule finds several at
    once (an imported question bank), so the caller can fix them all in one go. Either
    way the HTTP body names them as a marshmallow 422 does (shared.http)."""

    status = 422

    def __init__(self, message: str, field: str | None = None, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.fields = fields if fields is not None else ({field: [message]} if field else {})


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Unprocessable(Exception):
    """This record can never be applied, however often it is retried; the message says why.

    The reading contract's dead-letter policy: a projection sends a record to its
    service's dead-letter topic only when parsing it, or a handler applying it, raises
    this (it cannot be parsed, it breaks the event contract, or it refers to something
    that can never exist). Any other error is taken as passing (a locked or absent
    database, a bug being fixed): the batch rolls back and is retried, and the offsets do
    not move, so no good record is ever dropped."""


def reads_contract(read):
    """For a function that reads a statement's fields as the event contract lays them out:
    a statement it cannot read (a field missing, of the wrong type) breaks the contract, and
    no retry can help, so it is unprocessable (a consumer dead-letters it) rather than an
    error retried for ever."""
    @functools.wraps(read)
    def reader(*args, **kwargs):
        try:
            return read(*args, **kwargs)
        except Unprocessable:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise Unprocessable(f"{read.__name__}: the statement breaks the event contract: "
                                f"{type(exc).__name__} {exc}") from None
    return reader
