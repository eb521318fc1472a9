"""An AU's sessions as a content player runs them, for tests of what the LMS makes of
them: launched by the operator API, the fetch URL traded, initialized, then a result."""
from __future__ import annotations

from services.progress.cmi5 import terms as c
from tests.integration.test_cmi5 import ACTOR, Au
from tests.support.flows import AUTH


def started(progress, course_id: str, registration: str, au: int, actor: dict = ACTOR) -> tuple[Au, str]:
    launch = progress.post(f"/cmi5/courses/{course_id}/launches", headers=AUTH,
                           json={"au": au, "actor": actor, "registration": registration})
    assert launch.status_code == 201, launch.json
    session = Au(progress, launch.json["url"]).start()
    began = session.send(session.statement(c.INITIALIZED))
    assert began.status_code == 200, began.data
    return session, launch.json["session_id"]


def open_session(progress, course_id: str, registration: str, au: int, actor: dict = ACTOR) -> str:
    return started(progress, course_id, registration, au, actor)[1]


def satisfy(progress, course_id: str, registration: str, au: int, actor: dict = ACTOR) -> None:
    session, _ = started(progress, course_id, registration, au, actor)
    for st in (session.statement(c.COMPLETED, True, {"completion": True, "duration": "PT1S"}),
               session.statement(c.PASSED, True, {"success": True, "duration": "PT1S", "score": {"scaled": 0.9}},
                                 **{c.EXT_MASTERY: 0.8}),
               session.statement(c.TERMINATED, result={"duration": "PT3S"})):
        response = session.send(st)
        assert response.status_code == 200, response.data


def fail(progress, course_id: str, registration: str, au: int, actor: dict = ACTOR) -> None:
    session, _ = started(progress, course_id, registration, au, actor)
    failed = session.statement(c.FAILED, True, {"success": False, "duration": "PT1S", "score": {"scaled": 0.5}},
                               **{c.EXT_MASTERY: 0.8})
    for st in (failed, session.statement(c.TERMINATED, result={"duration": "PT3S"})):
        assert session.send(st).status_code == 200

