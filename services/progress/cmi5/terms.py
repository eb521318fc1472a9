"""The IRIs the cmi5 profile defines (cmi5 spec, section 9)."""
from __future__ import annotations

NS = "https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd"

ADL = "http://adlnet.gov/expapi/verbs/"
LAUNCHED = ADL + "launched"
INITIALIZED = ADL + "initialized"
COMPLETED = ADL + "completed"
PASSED = ADL + "passed"
FAILED = ADL + "failed"
TERMINATED = ADL + "terminated"
VOIDED = ADL + "voided"
ABANDONED = "https://w3id.org/xapi/adl/verbs/abandoned"
WAIVED = "https://w3id.org/xapi/adl/verbs/waived"
SATISFIED = "https://w3id.org/xapi/adl/verbs/satisfied"

# The verbs an AU sends that cmi5 defines (its "cmi5 defined statements", 9.3).
AU_DEFINED = frozenset((INITIALIZED, COMPLETED, PASSED, FAILED, TERMINATED))
# Those that count towards moveOn and so carry the moveon category (9.6.2.2).
MOVE_ON_VERBS = frozenset((COMPLETED, PASSED, FAILED))

VERB_NAMES = {LAUNCHED: "launched", INITIALIZED: "initialized", COMPLETED: "completed", PASSED: "passed",
              FAILED: "failed", TERMINATED: "terminated", ABANDONED: "abandoned", WAIVED: "waived",
              SATISFIED: "satisfied"}

CATEGORY_CMI5 = "https://w3id.org/xapi/cmi5/context/categories/cmi5"
CATEGORY_MOVEON = "https://w3id.org/xapi/cmi5/context/categories/moveon"

EXT = "https://w3id.org/xapi/cmi5/context/extensions/"
EXT_SESSION = EXT + "sessionid"
EXT_MASTERY = EXT + "masteryscore"
EXT_LAUNCH_MODE = EXT + "launchmode"
EXT_LAUNCH_URL = EXT + "launchurl"
EXT_MOVE_ON = EXT + "moveon"
EXT_LAUNCH_PARAMETERS = EXT + "launchparameters"
# The waiver's reason is a result extension (9.3.7.0-2), not a context one.
EXT_REASON = "https://w3id.org/xapi/cmi5/result/extensions/reason"

TYPE_COURSE = "https://w3id.org/xapi/cmi5/activitytype/course"
TYPE_BLOCK = "https://w3id.org/xapi/cmi5/activitytype/block"

MOVE_ON = ("Passed", "Completed", "CompletedAndPassed", "CompletedOrPassed", "NotApplicable")
LAUNCH_METHODS = ("AnyWindow", "OwnWindow")
LAUNCH_MODES = ("Normal", "Browse", "Review")
# Launch parameters the LMS adds to an AU's URL: the AU's own URL may not hold them (8.1.0.0-6).
LAUNCH_QUERY = ("endpoint", "fetch", "actor", "registration", "activityId")
LAUNCH_DATA = "LMS.LaunchData"
LEARNER_PREFERENCES = "cmi5LearnerPreferences"
