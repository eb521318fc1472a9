"""Request and response schemas of the certification API (and so its OpenAPI document)."""
from marshmallow import Schema, fields, validate

from services.certification.domain import MAX_GRACE_DAYS, STANDINGS
from shared.schemas import PageArgs, Timestamp, WholeNumber, page_of
from shared.vocabulary import CERTIFICATE_STATES, VALID


class CertificateSchema(Schema):
    id = fields.Str()
    number = fields.Str()
    status = fields.Str(metadata={"description": "valid or revoked"})
    verification_code = fields.Str()
    verification_url = fields.Str()
    programme_id = fields.Str()
    programme_code = fields.Str()
    programme_title = fields.Str()
    cohort_id = fields.Str()
    cohort_name = fields.Str()
    registration = fields.Str(metadata={"description": "the enrolment id"})
    learner_key = fields.Str()
    learner_name = fields.Str()
    organisation = fields.Str()
    issue_no = fields.Int(metadata={"description": "1 for the rule's issue, 2+ for re-issues"})
    issued_at = Timestamp()
    qualified_at = Timestamp(metadata={"description": "when the rule came to hold (statement time)"})
    issued_by = fields.Str()
    revoked_at = Timestamp()
    revoked_by = fields.Str()
    revocation_reason = fields.Str()


class CertificateListArgs(PageArgs):
    programme_id = fields.Str()
    programme_code = fields.Str()
    cohort_id = fields.Str()
    organisation = fields.Str()
    status = fields.Str(validate=validate.OneOf(CERTIFICATE_STATES))
    issued_from = Timestamp(metadata={"description": "issued at or after (date or date-time)"})
    issued_to = Timestamp(metadata={"description": "issued before (date or date-time)"})
    q = fields.Str(validate=validate.Length(min=1, max=300),
                   metadata={"description": "search: part of the learner's name or the certificate number"})


class ExportArgs(Schema):
    status = fields.Str(load_default=VALID, validate=validate.OneOf([*CERTIFICATE_STATES, "all"]))


class RevocationSchema(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=1000))


class RulesInSchema(Schema):
    grace_days = WholeNumber(required=True, validate=validate.Range(min=0, max=MAX_GRACE_DAYS),
                            metadata={"description": "days after the enrolment's deadline still accepted"})


class RulesSchema(RulesInSchema):
    programme_id = fields.Str()
    updated_at = Timestamp()
    updated_by = fields.Str()


class StandingSchema(Schema):
    registration = fields.Str()
    programme_id = fields.Str()
    cohort_id = fields.Str()
    learner_key = fields.Str()
    name = fields.Str()
    organisation = fields.Str()
    deadline = Timestamp()
    withdrawn_at = Timestamp()
    standing = fields.Str()
    qualified_at = Timestamp()


class StandingListArgs(PageArgs):
    programme_id = fields.Str()
    cohort_id = fields.Str()
    standing = fields.Str(validate=validate.OneOf(STANDINGS))


class VerificationSchema(Schema):
    """What a verifier sees: nothing else about the learner."""

    status = fields.Str(metadata={"description": "valid, revoked or unknown"})
    number = fields.Str()
    name = fields.Str()
    programme = fields.Str()
    issued_on = fields.Date()
    revoked_on = fields.Date()


CertificatePageSchema = page_of(CertificateSchema)
StandingPageSchema = page_of(StandingSchema)
