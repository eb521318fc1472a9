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
