"""Request and response schemas of the forwarding API (and so its OpenAPI document).

A target's password is load-only: no response schema has it, so no answer can carry it."""
from marshmallow import Schema, fields, validate

from services.forwarding.domain import MAX_BATCH_SIZE, MAX_TIMEOUT_SECONDS, XAPI_VERSIONS
from shared.events import EventType
from shared.schemas import PageArgs, Timestamp, WholeNumber, page_of

EVENT_TYPES = sorted(v for k, v in vars(EventType).items() if k.isupper())
_IRI = fields.Str(validate=validate.Length(min=1, max=1000))
_NAME = fields.Str(validate=validate.Length(min=1, max=300))


def _list(item, description: str):
    return fields.List(item, load_default=list, validate=validate.Length(max=500),
                       metadata={"description": description})


class FilterSchema(Schema):
    """Every list that is not empty must match (AND across lists, OR within one); empty forwards everything."""

    verbs = _list(_IRI, "verb IRIs")
    activities = _list(_IRI, "activity IRIs: the object or any context activity")
    cohorts = _list(_NAME, "cohort ids (a statement's cohort: its grouping, its registration, else the learner's)")
    agencies = _list(_NAME, "agencies (of the statement's cohorts)")
    event_types = _list(fields.Str(validate=validate.OneOf(EVENT_TYPES)),
                        "event types (docs/events.md); an LMS statement is lrs.statement")


class TargetInSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    url = fields.Str(required=True, validate=validate.Length(min=1, max=1000),
                     metadata={"description": "the LRS endpoint (statements are POSTed to <url>/statements)"})
    xapi_version = fields.Str(load_default="1.0.3", validate=validate.OneOf(XAPI_VERSIONS))
    username = fields.Str(load_default="", validate=validate.Length(max=300),
                          metadata={"description": "HTTP Basic key at the target"})
    password = fields.Str(load_only=True, validate=validate.Length(max=1000),
                          metadata={"description": "HTTP Basic secret at the target: stored, never shown; "
                                                   "omitted on PUT keeps the stored one"})
    filter = fields.Nested(FilterSchema, load_default=dict)
    enabled = fields.Bool(load_default=True)
    batch_size = WholeNumber(load_default=100, validate=validate.Range(min=1, max=MAX_BATCH_SIZE),
                             metadata={"description": "statements per POST"})
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=1, max=MAX_TIMEOUT_SECONDS),
                                   metadata={"description": "how long one POST may take before it is retried"})


class StatusSchema(Schema):
    lag = fields.Int(metadata={"description": "records on the topics not yet delivered (or judged)"})
    delivered = fields.Int()
    last_delivered_at = Timestamp()
    retrying = fields.Bool(metadata={"description": "the target is failing and retried with backoff"})
    stopped = fields.Bool(metadata={"description": "too many refusals in a row; a PUT starts it again"})
    last_error = fields.Str()
    quarantined = fields.Int(metadata={"description": "statements in quarantine (not resolved)"})
    updated_at = Timestamp()


class TargetSchema(Schema):
    id = fields.Str()
    name = fields.Str()
    url = fields.Str()
    xapi_version = fields.Str()
    username = fields.Str()
    has_password = fields.Bool()
    filter = fields.Nested(FilterSchema)
    enabled = fields.Bool()
    batch_size = fields.Int()
    timeout_seconds = fields.Float()
    revision = fields.Int()
    created_at = Timestamp()
    updated_at = Timestamp()
    updated_by = fields.Str()
    status = fields.Nested(StatusSchema, allow_none=True)


class QuarantineArgs(PageArgs):
    resolved = fields.Bool(load_default=False, metadata={"description": "true: those already replayed and delivered"})


class QuarantinedSchema(Schema):
    statement_id = fields.Str()
    topic = fields.Str()
    partition = fields.Int()
    offset = fields.Int()
    event_type = fields.Str()
    statement = fields.Dict()
    status = fields.Int(metadata={"description": "the target's HTTP status"})
    response = fields.Str(metadata={"description": "the target's answer (its first 2000 characters)"})
    attempts = fields.Int()
    quarantined_at = Timestamp()
    replay_requested_at = Timestamp()
    resolved_at = Timestamp()


class ReplayInSchema(Schema):
    statement_ids = fields.List(fields.UUID(), load_default=None, validate=validate.Length(min=1, max=10000),
                                metadata={"description": "these only; omitted: every unresolved one"})


class ReplaySchema(Schema):
    requested = fields.Int(metadata={"description": "how many were marked; the forwarder sends them shortly"})


TargetPageSchema = page_of(TargetSchema)
QuarantinePageSchema = page_of(QuarantinedSchema)
