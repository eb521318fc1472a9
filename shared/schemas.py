"""marshmallow pieces every service's API uses: paging, timestamps, learners."""
from __future__ import annotations

from datetime import UTC, date, datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

# The largest value an INTEGER column holds on PostgreSQL (SQLite holds 64 bits): a
# number past it is refused as input rather than failing in the database with a 500.
MAX_DB_INT = 2**31 - 1
# Moments accepted as input (by their own calendar date). Far enough inside datetime's
# limits that converting to UTC and adding a window or grace period of days cannot overflow.
EARLIEST, LATEST = date(1900, 1, 1), date(9000, 1, 1)


class Timestamp(fields.Field):
    """An ISO 8601 date-time (a zone is required, or UTC is assumed) or a plain date,
    which means midnight UTC. Dumps as ISO 8601 UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Not a valid date or date-time.")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            else:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("Not a valid date or date-time (ISO 8601).") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not EARLIEST < moment.date() < LATEST:
            raise ValidationError(f"Must be after {EARLIEST} and before {LATEST}.")
        return moment

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class WholeNumber(fields.Integer):
    """An integer input that is never rounded: marshmallow's Integer turns 1.5 into 1 and
    true into 1; here both are refused (1.0 and, in a query string, "2" still pass)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PageArgs(Schema):
    page = WholeNumber(load_default=1, validate=validate.Range(min=1, max=MAX_DB_INT))
    page_size = WholeNumber(load_default=100, validate=validate.Range(min=1, max=1000))


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """The response of a paged listing of `item_schema`."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema)),
        "page": fields.Int(),
        "page_size": fields.Int(),
        "total": fields.Int(),
    }, name=f"{item_schema.__name__.removesuffix('Schema')}Page")


class LearnerSchema(Schema):
    """A learner is identified by an email or by an account on some system."""

    name = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    email = fields.Email(load_default=None, validate=validate.Length(max=320))
    account_home_page = fields.Url(load_default=None, validate=validate.Length(max=500))
    account_name = fields.Str(load_default=None, validate=validate.Length(min=1, max=300))
    organisation = fields.Str(load_default=None, validate=validate.Length(max=300))

    @validates_schema
    def _identified(self, data, **kwargs):
        if data.get("email"):
            return
        if data.get("account_home_page") and data.get("account_name"):
            return
        if data.get("account_home_page") or data.get("account_name"):
            missing = "account_name" if data.get("account_home_page") else "account_home_page"
            raise ValidationError("an account needs both a home page and a name", missing)
        raise ValidationError("an email or an account (home page and name) is required", "email")
