"""Domain failures every service raises, mapped to HTTP once in shared.http.

Kept free of Flask so domain modules can raise them.
"""


class DomainError(Exception):
    """A rule was broken (HTTP 422); `field` names the input at fault, if one is."""

    status = 422

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409
