"""moveOn: when an AU, a block or a course is satisfied (cmi5 spec 9.3.9, 13.1.4).

An AU is satisfied when what it reported in the registration meets its moveOn (or it was
waived); a block when every AU and block in it is; the course when everything in it is.
The LMS says so once per registration with a `satisfied` statement for each block and
for the course: `newly_satisfied` names those a change makes satisfied.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.progress.cmi5.structure import Au, Block, Course


@dataclass(frozen=True)
class AuRecord:
    """What an AU reported in one registration."""

    completed: bool = False
    passed: bool = False
    failed: bool = False
    waived: bool = False


def au_satisfied(move_on: str, record: AuRecord) -> bool:
    if record.waived or move_on == "NotApplicable":
        return True
    return {
        "Completed": record.completed,
        "Passed": record.passed,
        "CompletedAndPassed": record.completed and record.passed,
        "CompletedOrPassed": record.completed or record.passed,
    }[move_on]


# What an operator sees of one AU for one learner (the dashboard's learner table), the
# first that holds: waived; satisfied (its moveOn met, as the LMS judges blocks and the
# course: a NotApplicable AU is, launched or not); failed (and not passed); abandoned (its
# latest session was, and it reported nothing that counts); in_progress (launched: a
# session open, or a result short of its moveOn); not_attempted.
AU_STATES = ("not_attempted", "in_progress", "abandoned", "failed", "satisfied", "waived")


def au_state(move_on: str, record: AuRecord, last_session: str | None) -> str:
    """`last_session`: the status of the AU's latest session in the registration
    (launched, initialized, terminated, abandoned, closed), None if never launched."""
    if record.waived:
        return "waived"
    if au_satisfied(move_on, record):
        return "satisfied"
    if record.failed and not record.passed:
        return "failed"
    if last_session == "abandoned" and not (record.completed or record.passed):
        return "abandoned"
    return "not_attempted" if last_session is None else "in_progress"


def _satisfied(node: Au | Block, records: dict[str, AuRecord]) -> bool:
    if isinstance(node, Au):
        return au_satisfied(node.move_on, records.get(node.id, AuRecord()))
    return all(_satisfied(child, records) for child in node.children)


COURSE = "course"  # the key of the course among satisfied nodes (blocks are keyed by their id)


def satisfied_nodes(course: Course, records: dict[str, AuRecord]) -> list[str]:
    """The blocks (ids, innermost first, in document order) and the course ("course")
    that these records satisfy."""
    found = []

    def visit(nodes) -> bool:
        every = True
        for node in nodes:
            if isinstance(node, Block):
                inner = visit(node.children)
                if inner:
                    found.append(node.id)
                every = every and inner
            else:
                every = every and _satisfied(node, records)
        return every

    if visit(course.children):
        found.append(COURSE)
    return found


def newly_satisfied(course: Course, records: dict[str, AuRecord], already: set[str]) -> list[str]:
    return [key for key in satisfied_nodes(course, records) if key not in already]
