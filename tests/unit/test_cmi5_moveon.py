"""moveOn: when AUs, blocks and the course are satisfied (cmi5 spec 9.3.9, 13.1.4)."""
from __future__ import annotations

import pytest

from services.progress.cmi5.moveon import (
    AU_STATES,
    COURSE,
    AuRecord,
    au_satisfied,
    au_state,
    newly_satisfied,
    satisfied_nodes,
)
from services.progress.cmi5.structure import Au, Block, Course


@pytest.mark.parametrize(("move_on", "record", "expected"), [
    ("Completed", AuRecord(completed=True), True),
    ("Completed", AuRecord(passed=True), False),
    ("Passed", AuRecord(passed=True), True),
    ("Passed", AuRecord(failed=True, completed=True), False),
    ("CompletedAndPassed", AuRecord(completed=True), False),
    ("CompletedAndPassed", AuRecord(completed=True, passed=True), True),
    ("CompletedOrPassed", AuRecord(passed=True), True),
    ("CompletedOrPassed", AuRecord(failed=True), False),
    ("NotApplicable", AuRecord(), True),
    ("Passed", AuRecord(waived=True), True),
])
def test_au_move_on(move_on, record, expected):
    assert au_satisfied(move_on, record) is expected


def _au(n, move_on="Completed"):
    return Au(f"urn:au:{n}", {}, {}, "https://example.org", move_on)


COURSE_OF_TWO_BLOCKS = Course("urn:c", {}, {}, (
    Block("urn:b1", {}, {}, (_au(1), Block("urn:b1.1", {}, {}, (_au(2),)))),
    Block("urn:b2", {}, {}, (_au(3, "NotApplicable"),)),
))


def test_blocks_innermost_first_then_the_course():
    assert satisfied_nodes(COURSE_OF_TWO_BLOCKS, {}) == ["urn:b2"]
    records = {"urn:au:2": AuRecord(completed=True)}
    assert satisfied_nodes(COURSE_OF_TWO_BLOCKS, records) == ["urn:b1.1", "urn:b2"]
    records["urn:au:1"] = AuRecord(completed=True)
    assert satisfied_nodes(COURSE_OF_TWO_BLOCKS, records) == ["urn:b1.1", "urn:b1", "urn:b2", COURSE]


def test_each_is_satisfied_once():
    records = {"urn:au:1": AuRecord(completed=True), "urn:au:2": AuRecord(completed=True)}
    assert newly_satisfied(COURSE_OF_TWO_BLOCKS, records, {"urn:b2", "urn:b1.1"}) == ["urn:b1", COURSE]
    assert newly_satisfied(COURSE_OF_TWO_BLOCKS, records, {"urn:b2", "urn:b1.1", "urn:b1", COURSE}) == []


@pytest.mark.parametrize("move_on, record, last_session, state", [
    ("CompletedAndPassed", AuRecord(), None, "not_attempted"),
    ("CompletedAndPassed", AuRecord(), "launched", "in_progress"),
    ("CompletedAndPassed", AuRecord(completed=True), "terminated", "in_progress"),  # short of its moveOn
    ("CompletedAndPassed", AuRecord(completed=True, passed=True), "terminated", "satisfied"),
    ("Passed", AuRecord(failed=True), "terminated", "failed"),
    ("Passed", AuRecord(failed=True, passed=True), "terminated", "satisfied"),  # passed in a later session
    ("Completed", AuRecord(), "abandoned", "abandoned"),
    ("CompletedAndPassed", AuRecord(completed=True), "abandoned", "in_progress"),  # what it reported still counts
    ("NotApplicable", AuRecord(), None, "satisfied"),  # as the LMS judges its block and course
    ("Passed", AuRecord(failed=True, waived=True), "terminated", "waived"),
])
def test_an_au_state_is_what_an_operator_needs_to_act_on(move_on, record, last_session, state):
    assert au_state(move_on, record, last_session) == state
    assert state in AU_STATES
