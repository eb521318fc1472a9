"""One word for one fact, across every service's API, CSV and read model.

Each service used to have its own: an enrolment was "enrolled" in progress and "active"
in enrollment and assessment; a certificate "valid" in one place and "active" in
another; a learner out of attempts "failed" in progress and "out_of_attempts" in
assessment, where "failed" meant failed so far, with attempts left. These are the words
now, written once. The events never carried them (a state is derived from the
statements), so no record on the topics changes; the databases' stored words were
rewritten by each service's migration (enrollment 0002, assessment 0002).
"""

# --- an enrolment ----------------------------------------------------------------------------
ENROLLED = "enrolled"
WITHDRAWN = "withdrawn"
ENROLMENT_STATES = (ENROLLED, WITHDRAWN)

# --- a learner's final test ------------------------------------------------------------------
NOT_ATTEMPTED = "not_attempted"
IN_PROGRESS = "in_progress"  # an attempt open, or every attempt so far failed with attempts left
PASSED = "passed"
FAILED = "failed"            # out of attempts without a pass: the one meaning of "failed"
FINAL_TEST_STATES = (NOT_ATTEMPTED, IN_PROGRESS, PASSED, FAILED)

# --- a certificate ---------------------------------------------------------------------------
VALID = "valid"
REVOKED = "revoked"
CERTIFICATE_STATES = (VALID, REVOKED)
