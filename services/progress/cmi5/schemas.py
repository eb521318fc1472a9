"""Request and response schemas of the cmi5 routes (and so their OpenAPI document)."""
from marshmallow import Schema, fields, validate

from services.progress.cmi5.terms import LAUNCH_MODES


class AuSchema(Schema):
    index = fields.Int()
    id = fields.Str(metadata={"description": "the publisher's AU id"})
    activity_id = fields.Str(metadata={"description": "the LMS's id of the AU: the launch's activityId"})
    title = fields.Dict(keys=fields.Str(), values=fields.Str())
    url = fields.Str()
    moveOn = fields.Str()
    masteryScore = fields.Float(allow_none=True)
    launchMethod = fields.Str()


class BlockSchema(Schema):
    id = fields.Str()
    activity_id = fields.Str()
    title = fields.Dict(keys=fields.Str(), values=fields.Str())


class CourseSchema(Schema):
    id = fields.Str(metadata={"description": "the LMS's id of the imported package"})
    course_id = fields.Str(metadata={"description": "the publisher's course id"})
    activity_id = fields.Str()
    title = fields.Dict(keys=fields.Str(), values=fields.Str())
    required_modules = fields.List(fields.Str())
    aus = fields.List(fields.Nested(AuSchema))
    blocks = fields.List(fields.Nested(BlockSchema))


class LaunchInSchema(Schema):
    au = fields.Raw(required=True, metadata={"description": "the AU's index (0-based, document order) or id"})
    actor = fields.Dict(required=True, metadata={"description": "the learner, an xAPI Agent"})
    registration = fields.UUID(load_default=None)
    launchMode = fields.Str(load_default="Normal", validate=validate.OneOf(LAUNCH_MODES))
    returnURL = fields.Url(load_default=None, require_tld=False)


class LaunchSchema(Schema):
    url = fields.Str()
    session_id = fields.Str()
    registration = fields.Str()
    activity_id = fields.Str()


class WaiverInSchema(Schema):
    au = fields.Raw(required=True, metadata={"description": "the AU's index or id"})
    reason = fields.Str(required=True, validate=validate.OneOf(
        ("Tested Out", "Equivalent AU", "Equivalent Outside Activity", "Administrative")))
    actor = fields.Dict(metadata={"description": "the learner (an xAPI Agent): needed when nobody has launched in "
                                                 "the registration yet"})
    course = fields.Str(validate=validate.Length(min=1, max=36), metadata={
        "description": "the imported course, for a registration nobody has launched in yet; by default the "
                       "course delivering the enrolment's programme"})


class WaiverSchema(Schema):
    session_id = fields.Str()


class AuStateSchema(Schema):
    index = fields.Int()
    id = fields.Str()
    completed = fields.Bool()
    passed = fields.Bool()
    failed = fields.Bool()
    waived = fields.Bool()
    satisfied = fields.Bool()


class RegistrationSchema(Schema):
    registration = fields.Str()
    course = fields.Str()
    actor = fields.Dict()
    satisfied = fields.Bool()
    aus = fields.List(fields.Nested(AuStateSchema))
