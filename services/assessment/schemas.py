"""Request and response schemas of the assessment API (and so its OpenAPI document).

Shapes are checked here; the rules that span questions (answers among the options, no
duplicate ids or texts) are the domain's (domain.build_bank)."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.assessment.domain import BEST, LAST, QUESTION_TYPES, RESULT_STATUSES
from shared.schemas import PageArgs, Timestamp, WholeNumber, page_of
from shared.vocabulary import WITHDRAWN

ANSWER_DOC = {"description": "an option, a list of options (multiple choice) or true/false"}


class QuestionInSchema(Schema):
    id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=4000))
    type = fields.Str(required=True, validate=validate.OneOf(QUESTION_TYPES))
    topic = fields.Str(load_default=None, validate=validate.Length(max=200))
    options = fields.List(fields.Str(validate=validate.Length(min=1, max=1000)), load_default=None,
                          validate=validate.Length(max=50),
                          metadata={"description": "optional for true_false (then 'true' and 'false')"})
    correct = fields.Raw(required=True, metadata=ANSWER_DOC)


class BankInSchema(Schema):
    questions = fields.List(fields.Nested(QuestionInSchema), required=True,
                            validate=validate.Length(min=1, max=10000))


class BankSchema(Schema):
    programme_id = fields.Str()
    version = fields.Int()
    question_count = fields.Int()
    topics = fields.List(fields.Str())
    imported_at = Timestamp()
    imported_by = fields.Str()
    questions = fields.List(fields.Dict(), metadata={"description": "with their correct answers"})


class FinalTestInSchema(Schema):
    question_count = WholeNumber(load_default=None, validate=validate.Range(min=1, max=1000))
    per_topic = fields.Dict(keys=fields.Str(validate=validate.Length(min=1, max=200)),
                            values=WholeNumber(validate=validate.Range(min=1, max=1000)), load_default=None,
                            metadata={"description": "questions drawn per topic; instead of question_count"})
    time_limit_seconds = WholeNumber(load_default=None, validate=validate.Range(min=1, max=7 * 86400))
    time_limit_minutes = WholeNumber(load_default=None, validate=validate.Range(min=1, max=7 * 1440))
    pass_mark = fields.Float(required=True, validate=validate.Range(min=0, max=1, min_inclusive=False),
                             metadata={"description": "the scaled score needed to pass, e.g. 0.7"})
    max_attempts = WholeNumber(load_default=1, validate=validate.Range(min=1, max=100))
    counting = fields.Str(load_default=BEST, validate=validate.OneOf([BEST, LAST]),
                          metadata={"description": "which attempt decides: the best or the last"})

    @validates_schema
    def _one_of_each(self, data, **kwargs):
        if (data.get("question_count") is None) == (data.get("per_topic") is None):
            raise ValidationError("give either question_count or per_topic", "question_count")
        if (data.get("time_limit_seconds") is None) == (data.get("time_limit_minutes") is None):
            raise ValidationError("give either time_limit_seconds or time_limit_minutes", "time_limit_seconds")


class FinalTestSchema(Schema):
    programme_id = fields.Str()
    activity_id = fields.Str()
    question_count = fields.Int(allow_none=True)
    per_topic = fields.Dict(allow_none=True)
    time_limit_seconds = fields.Int()
    pass_mark = fields.Float()
    max_attempts = fields.Int()
    counting = fields.Str()
    updated_at = Timestamp()
    updated_by = fields.Str()


class AttemptStartSchema(Schema):
    registration = fields.Str(required=True, validate=validate.Length(min=1, max=36),
                              metadata={"description": "the enrolment id"})


class AnswersSchema(Schema):
    answers = fields.Dict(keys=fields.Str(), values=fields.Raw(metadata=ANSWER_DOC), required=True,
                          metadata={"description": "question id -> answer"})


class PaperQuestionSchema(Schema):
    id = fields.Str()
    text = fields.Str()
    type = fields.Str()
    topic = fields.Str(allow_none=True)
    options = fields.List(fields.Str())


class AttemptSchema(Schema):
    id = fields.Str()
    registration = fields.Str()
    programme_id = fields.Str()
    number = fields.Int()
    status = fields.Str(metadata={"description": "open, submitted or timed_out"})
    bank_version = fields.Int()
    started_at = Timestamp()
    expires_at = Timestamp()
    finished_at = Timestamp(allow_none=True)
    questions = fields.List(fields.Nested(PaperQuestionSchema), metadata={"description": "never with answers"})
    answers = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()))
    pass_mark = fields.Float()
    score = fields.Float(allow_none=True, metadata={"description": "scaled 0..1"})
    raw_score = fields.Float(allow_none=True)
    success = fields.Bool(allow_none=True)
    credits = fields.Dict(keys=fields.Str(), values=fields.Float(), allow_none=True,
                          metadata={"description": "credit earned per question, 0..1"})


class AttemptOutcomeSchema(Schema):
    attempt_id = fields.Str()
    source = fields.Str(metadata={"description": "assessment, or lrs for a result an LMS reported"})
    number = fields.Int(allow_none=True)
    started_at = Timestamp(allow_none=True)
    finished_at = Timestamp(allow_none=True)
    scaled = fields.Float(allow_none=True)
    success = fields.Bool(allow_none=True)


class LearnerResultSchema(Schema):
    registration = fields.Str()
    programme_id = fields.Str()
    cohort_id = fields.Str(allow_none=True)
    learner_key = fields.Str()
    enrolment_status = fields.Str()
    attempts_used = fields.Int()
    best_score = fields.Float(allow_none=True)
    latest_score = fields.Float(allow_none=True)
    counted_score = fields.Float(allow_none=True, metadata={"description": "the score of the attempt that counts"})
    status = fields.Str(metadata={"description": ", ".join(RESULT_STATUSES)})
    decided_at = Timestamp(allow_none=True)


class LearnerResultDetailSchema(LearnerResultSchema):
    attempts = fields.List(fields.Nested(AttemptOutcomeSchema))


class ResultListArgs(PageArgs):
    status = fields.Str(validate=validate.OneOf([*RESULT_STATUSES, WITHDRAWN]), metadata={
        "description": "learners still enrolled with this result, or those withdrawn (`withdrawn`)"})


class CloseExpiredSchema(Schema):
    closed = fields.Int()


_ResultPage = page_of(LearnerResultSchema)


class ResultPageSchema(_ResultPage):
    counts = fields.Dict(keys=fields.Str(), values=fields.Int(),
                         metadata={"description": "learners still enrolled per status, and those withdrawn "
                                                  "(`withdrawn`), over the whole cohort or programme"})
