"""Response and query schemas of the progress API (and so its OpenAPI document)."""
from marshmallow import Schema, fields, validate

from services.progress.cmi5.moveon import AU_STATES
from services.progress.queries import COUNTS, ROLLUPS, SORTS, STATES
from shared.schemas import MAX_DB_INT, PageArgs, Timestamp, WholeNumber, page_of


class CountsSchema(Schema):
    enrolled = fields.Int(metadata={"description": "learners with an active enrolment"})
    withdrawn = fields.Int(metadata={"description": "withdrawn learners, who count in no other figure"})
    started = fields.Int(metadata={"description": "active learners with any activity"})
    modules_completed = fields.Int(metadata={"description": "active learners who completed every required module"})
    passed = fields.Int()
    failed = fields.Int(metadata={"description": "out of final-test attempts without a pass (docs/events.md)"})
    certified = fields.Int(metadata={"description": "active learners holding a valid certificate"})
    overdue = fields.Int(metadata={"description": "past the deadline without finishing (decided by the clock)"})
    rates = fields.Dict(keys=fields.Str(), values=fields.Float(),
                        metadata={"description": "each count divided by enrolled"})


class CohortProgressSchema(CountsSchema):
    id = fields.Str()
    programme_id = fields.Str()
    name = fields.Str()
    agency = fields.Str()
    province = fields.Str(allow_none=True)
    wave = fields.Int()
    accounts_issued_at = Timestamp()
    activity_id = fields.Str()


class RollupSchema(CountsSchema):
    key = fields.Str(allow_none=True, metadata={"description": "the agency, province or programme id"})
    cohorts = fields.Int()


class CampaignSchema(CountsSchema):
    cohorts = fields.Int()


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
    modules_required = fields.Int()
    modules_completed = fields.Int()
    percent = fields.Float()
    modules_completed_at = Timestamp()
    first_activity_at = Timestamp()
    last_activity_at = Timestamp()
    time_spent_seconds = fields.Float()
    final_test_status = fields.Str(metadata={"description": "not_attempted, in_progress (an attempt open, or "
                                                            "attempts left), passed or failed (out of attempts)"})
    final_test_attempts = fields.Int(metadata={"description": "attempts started, submitted or not"})
    final_test_best_score = fields.Float(allow_none=True)
    final_test_decided_at = Timestamp()
    finished_at = Timestamp()
    certificate_number = fields.Str(allow_none=True)
    certificate_status = fields.Str(allow_none=True)
    certified_at = Timestamp()
    overdue = fields.Bool()
    au_states = fields.List(fields.Str(validate=validate.OneOf(AU_STATES)), metadata={
        "description": "a programme delivered by a cmi5 course only: each AU's state, in the order of the "
                       "page's course.aus: " + ", ".join(AU_STATES)})


class DaySchema(Schema):
    day = fields.Str(metadata={"description": "ISO date (UTC)"})
    enrolled = fields.Int()
    active = fields.Int()
    completed = fields.Int()
    certified = fields.Int()


class CohortListArgs(PageArgs):
    programme_id = fields.Str()
    agency = fields.Str()
    province = fields.Str()
    wave = WholeNumber(validate=validate.Range(min=1, max=MAX_DB_INT))


class LearnerFilterArgs(Schema):
    """What selects and orders a cohort's learners: the JSON list pages them, the CSV
    export does not (it is every learner, for an agency to act on)."""

    state = fields.Str(validate=validate.OneOf(STATES))
    organisation = fields.Str()
    q = fields.Str(validate=validate.Length(max=200), metadata={"description": "part of the learner's name"})
    sort = fields.Str(load_default="name", validate=validate.OneOf(list(SORTS)))
    order = fields.Str(load_default="asc", validate=validate.OneOf(["asc", "desc"]))


class LearnerListArgs(LearnerFilterArgs, PageArgs):
    pass


class RollupArgs(Schema):
    by = fields.Str(required=True, validate=validate.OneOf(list(ROLLUPS)))


CohortProgressPageSchema = page_of(CohortProgressSchema)
class CourseAuSchema(Schema):
    id = fields.Str(metadata={"description": "the AU's id in the package (its publisher's IRI)"})
    title = fields.Dict(keys=fields.Str(), values=fields.Str(), metadata={"description": "language → title"})


class LearnerCourseSchema(Schema):
    id = fields.Str(metadata={"description": "the imported course (POST /cmi5/courses)"})
    aus = fields.List(fields.Nested(CourseAuSchema))


class LearnerProgressPageSchema(page_of(LearnerProgressSchema)):
    course = fields.Nested(LearnerCourseSchema, metadata={
        "description": "a programme delivered by a cmi5 course only: its AUs, which each learner's au_states "
                       "follow"})
# Every count the queries compute is documented above.
assert set(COUNTS) <= set(CountsSchema._declared_fields)
