"""Request and response schemas of the enrollment API (and so its OpenAPI document)."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.enrollment.domain import DEFAULT_WINDOW_DAYS
from shared.accounts import LOCALES, ROLES, XAPI_SCOPES
from shared.schemas import MAX_DB_INT, LearnerSchema, PageArgs, Timestamp, WholeNumber, page_of
from shared.vocabulary import ENROLMENT_STATES

IRI = fields.Url(required=True, require_tld=False, validate=validate.Length(max=500))


class ProgrammeInSchema(Schema):
    code = fields.Str(required=True, validate=[
        validate.Length(min=1, max=40), validate.Regexp(r"^[A-Za-z0-9_-]+$", error="letters, digits, - and _ only")])
    title = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    required_modules = fields.List(fields.Url(require_tld=False, validate=validate.Length(max=500)),
                                   validate=validate.Length(min=1, max=200))
    cmi5_course = fields.Str(validate=validate.Length(min=1, max=36), metadata={
        "description": "instead of required_modules: the `id` of a course imported on the progress service "
                       "(POST /cmi5/courses), whose AUs and blocks become the required modules"})
    final_test = IRI
    window_days = WholeNumber(load_default=DEFAULT_WINDOW_DAYS, validate=validate.Range(min=1, max=366))

    @validates_schema(skip_on_field_errors=False, pass_original=True)  # named with the other fields' errors
    def _modules_or_course(self, data, original, **kwargs):
        # By what was sent: a field sent but invalid has its own error already.
        sent = original if isinstance(original, dict) else {}
        given = [name for name in ("required_modules", "cmi5_course") if sent.get(name) is not None]
        if len(given) == 1:
            return
        message = "give required_modules or cmi5_course, not both" if given else \
            "give the required modules, or the cmi5 course whose AUs and blocks they are"
        raise ValidationError(message, "required_modules" if not given else "cmi5_course")


class CourseAttachmentSchema(Schema):
    cmi5_course = fields.Str(required=True, validate=validate.Length(min=1, max=36), metadata={
        "description": "the `id` of a course imported on the progress service (POST /cmi5/courses)"})


class ProgrammeSchema(ProgrammeInSchema):
    id = fields.Str()
    activity_id = fields.Str()
    created_at = Timestamp()


class CohortInSchema(Schema):
    programme_id = fields.Str(required=True, validate=validate.Length(min=1, max=36))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    agency = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    province = fields.Str(load_default=None, validate=validate.Length(max=200))
    wave = WholeNumber(load_default=1, validate=validate.Range(min=1, max=MAX_DB_INT))
    accounts_issued_at = Timestamp(required=True)


class CohortSchema(CohortInSchema):
    id = fields.Str()
    activity_id = fields.Str()
    created_at = Timestamp()


class EnrolmentSchema(Schema):
    id = fields.Str()
    programme_id = fields.Str()
    cohort_id = fields.Str()
    learner = fields.Nested(LearnerSchema)
    learner_key = fields.Str()
    status = fields.Str()
    enrolled_at = Timestamp()
    deadline = Timestamp()
    withdrawn_at = Timestamp()
    withdrawal_reason = fields.Str()


class WithdrawalSchema(Schema):
    reason = fields.Str(load_default=None, validate=validate.Length(max=1000))


class ImportRejectionSchema(Schema):
    row = fields.Int(metadata={"description": "line number in the file (the header is line 1)"})
    errors = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()))


class ImportReportSchema(Schema):
    rows = fields.Int()
    enrolled = fields.Int()
    already_enrolled = fields.Int()
    rejected = fields.List(fields.Nested(ImportRejectionSchema))


class ProgrammeListArgs(PageArgs):
    code = fields.Str()


class CohortListArgs(PageArgs):
    programme_id = fields.Str()
    agency = fields.Str()
    province = fields.Str()
    wave = WholeNumber(validate=validate.Range(min=1, max=MAX_DB_INT))


class EnrolmentListArgs(PageArgs):
    programme_id = fields.Str()
    cohort_id = fields.Str()
    status = fields.Str(validate=validate.OneOf(ENROLMENT_STATES))
    organisation = fields.Str()


ProgrammePageSchema = page_of(ProgrammeSchema)
CohortPageSchema = page_of(CohortSchema)
EnrolmentPageSchema = page_of(EnrolmentSchema)


# --- accounts (shared.accounts) ------------------------------------------------------------

_ROLE = fields.Str(validate=validate.OneOf(ROLES))
_NAMES = fields.List(fields.Str(validate=validate.Length(min=1, max=200)), allow_none=True,
                     validate=validate.Length(max=500))


class AccountChangeSchema(Schema):
    """What may change; what is not given stays."""

    role = _ROLE
    display_name = fields.Str(validate=validate.Length(min=1, max=200))
    units = _NAMES
    cohorts = _NAMES
    scopes = fields.List(fields.Str(validate=validate.OneOf(XAPI_SCOPES)), validate=validate.Length(max=20))
    locale = fields.Str(allow_none=True, validate=validate.OneOf(LOCALES))


class AccountInSchema(AccountChangeSchema):
    key = fields.Str(validate=[validate.Length(min=3, max=64),
                               validate.Regexp(r"^[A-Za-z0-9_.@-]+$", error="letters, digits, _ . @ - only")],
                     metadata={"description": "chosen by the server when not given"})
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))


class AccountSchema(Schema):
    key = fields.Str()
    role = fields.Str()
    display_name = fields.Str()
    units = fields.List(fields.Str(), allow_none=True)
    cohorts = fields.List(fields.Str(), allow_none=True)
    scopes = fields.List(fields.Str())
    locale = fields.Str(allow_none=True)
    disabled = fields.Bool()
    version = fields.Int()
    updated_at = Timestamp()
    updated_by = fields.Str()


class AccountWithSecretSchema(AccountSchema):
    secret = fields.Str(metadata={"description": "shown this once; only its hash is kept"})


class AccountListArgs(PageArgs):
    role = _ROLE
    disabled = fields.Bool()


AccountPageSchema = page_of(AccountSchema)
