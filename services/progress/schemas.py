"""Response and query schemas of the progress API."""
from marshmallow import Schema, fields, validate

from services.progress.projections import ENROLLED, WITHDRAWN
from shared.schemas import PageArgs, Timestamp, page_of


class CohortProgressSchema(Schema):
    id = fields.Str()
    programme_id = fields.Str()
    name = fields.Str()
    agency = fields.Str()
    province = fields.Str(allow_none=True)
    wave = fields.Int()
    accounts_issued_at = Timestamp()
    activity_id = fields.Str()
    enrolled = fields.Int(metadata={"description": "learners with an active enrolment"})
    withdrawn = fields.Int()


class LearnerProgressSchema(Schema):
    registration = fields.Str(metadata={"description": "the enrolment id (xAPI context.registration)"})
    cohort_id = fields.Str()
    programme_id = fields.Str()
    learner_key = fields.Str()
    name = fields.Str(allow_none=True)
    organisation = fields.Str(allow_none=True)
    status = fields.Str()
    enrolled_at = Timestamp()
    deadline = Timestamp()
    withdrawn_at = Timestamp()


class CohortListArgs(PageArgs):
    programme_id = fields.Str()
    agency = fields.Str()
    province = fields.Str()
    wave = fields.Int()


class LearnerListArgs(PageArgs):
    status = fields.Str(validate=validate.OneOf([ENROLLED, WITHDRAWN]))


CohortProgressPageSchema = page_of(CohortProgressSchema)
LearnerProgressPageSchema = page_of(LearnerProgressSchema)
