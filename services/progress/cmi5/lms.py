"""The cmi5 LMS, on top of the LRS of the same database: packages imported, AUs launched,
fetch URLs traded for session credentials, the AU's statements judged (rules.py) and
stored with the LMS's own (satisfied, abandoned, waived) in one transaction.

The LRS knows nothing of cmi5: it is handed this object as its `sessions` hook
(deps.Lrs) and asks it about credentials whose key starts with KEY_PREFIX, about what
such a credential may reach, and to store the statements it sends.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.progress import tables as service_tables
from services.progress.cmi5 import moveon, rules, structure
from services.progress.cmi5 import statements as st
from services.progress.cmi5 import tables as t
from services.progress.cmi5 import terms as c
from services.progress.lrs import documents, store, validation
from services.progress.lrs.auth import Client
from services.progress.lrs.keys import agent_key, digest
from shared import db, outbox, xapi
from shared.errors import Conflict, DomainError, NotFound

KEY_PREFIX = "cmi5-"
# A session not terminated this long after its launch is abandoned (and its token dies).
SESSION_HOURS = 8
_SESSION_SCOPES = frozenset(("statements/write", "statements/read/mine", "state", "profile"))
_OPEN = ("launched", "initialized")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _json(value) -> bytes:
    return orjson.dumps(value)


@dataclass(frozen=True)
class Launch:
    url: str
    session_id: str
    registration: str
    activity_id: str


class Cmi5Lms:
    def __init__(self, engine: Engine, *, outbox: sa.Table, topic: str, activity_base: str,
                 content_topic: str, clock: Callable[[], datetime] = xapi.utc_now):
        self.engine, self.outbox, self.topic = engine, outbox, topic
        # Where the imports and removals are told (learnstream.content.v1), for enrollment.
        self.content_topic = content_topic
        self.activity_base = activity_base.rstrip("/") + "/"
        self.clock = clock
        # Course structures by course, parsed once per process for the sessions' requests
        # (a structure never changes once imported; a 1,000-AU one takes milliseconds to parse).
        self._structures: dict[str, structure.Course] = {}

    @classmethod
    def for_service(cls, engine: Engine, settings) -> Cmi5Lms:
        """The progress service's LMS: its statements on the LRS topic, its catalog facts
        on the content topic, both through the service's outbox."""
        return cls(engine, outbox=service_tables.outbox, topic=settings.topic("lrs"),
                   activity_base=settings.activity_base, content_topic=settings.topic("content"))

    # --- the LMS's ids for a course's parts (stable: the same in every registration) ------

    def au_activity_id(self, course: str, index: int) -> str:
        return f"{self.activity_base}cmi5/{course}/au/{index}"

    def block_activity_id(self, course: str, block_id: str) -> str:
        return f"{self.activity_base}cmi5/{course}/block/{digest(block_id)[:16]}"

    def course_activity_id(self, course: str) -> str:
        return f"{self.activity_base}cmi5/{course}"

    # --- import -------------------------------------------------------------------------

    def import_package(self, content: bytes, content_type: str, operator: str) -> dict:
        """Store the package and tell learnstream.content.v1, in one transaction (so
        enrollment learns every course imported, and only those). Raises
        structure.PackageError (400) for a package breaking the spec."""
        package = structure.read(content, content_type)
        course_pk = str(uuid.uuid4())
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(t.courses.insert().values(
                id=course_pk, course_id=package.course.id,
                structure=_json(structure.to_dict(package.course)), created_at=now))
            rows = [{"course": course_pk, "path_hash": digest(path), "path": path, "content": data}
                    for path, data in package.files.items()]
            for chunk in db.chunks(rows, 200):
                conn.execute(t.files.insert(), chunk)
            activity = self._course_activity(course_pk, package.course)
            self._tell(conn, st.course_imported(course_pk, activity, operator, now))
        return self.describe(course_pk, package.course)

    def _course_activity(self, course_pk: str, course: structure.Course) -> dict:
        return st.course_activity(self.course_activity_id(course_pk), course_pk, course.id, course.title,
                                  self.required_modules(course_pk, course))

    def _tell(self, conn: Connection, event) -> None:
        outbox.append(conn, self.outbox, self.content_topic, [event])

    def describe(self, course_pk: str, course: structure.Course) -> dict:
        return {
            "id": course_pk, "course_id": course.id,
            "title": course.title, "activity_id": self.course_activity_id(course_pk),
            "required_modules": self.required_modules(course_pk, course),
            "aus": [{"index": i, "id": au.id, "activity_id": self.au_activity_id(course_pk, i), "title": au.title,
                     "url": au.url, "moveOn": au.move_on, "masteryScore": au.mastery_score,
                     "launchMethod": au.launch_method} for i, au in enumerate(course.aus)],
            "blocks": [{"id": b.id, "activity_id": self.block_activity_id(course_pk, b.id), "title": b.title}
                       for b in course.blocks],
        }

    def required_modules(self, course_pk: str, course: structure.Course) -> list[str]:
        """The programme modules the package stands for: its AUs and its blocks (LMS ids)."""
        return ([self.au_activity_id(course_pk, i) for i in range(len(course.aus))]
                + [self.block_activity_id(course_pk, b.id) for b in course.blocks])

    def course(self, course_pk: str) -> structure.Course:
        with db.reading(self.engine) as conn:
            row = conn.execute(sa.select(t.courses).where(t.courses.c.id == course_pk)).first()
        if row is None:
            raise NotFound(f"no cmi5 course {course_pk}", "course")
        return structure.from_dict(orjson.loads(row.structure))

    def delete_course(self, course_pk: str, operator: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.courses).where(t.courses.c.id == course_pk)).first()
            if row is None:
                raise NotFound(f"no cmi5 course {course_pk}", "course")
            conn.execute(t.files.delete().where(t.files.c.course == course_pk))
            conn.execute(t.courses.delete().where(t.courses.c.id == course_pk))
            course = structure.from_dict(orjson.loads(row.structure))
            activity = self._course_activity(course_pk, course)
            self._tell(conn, st.course_removed(course_pk, activity, operator, self.clock()))

    def file(self, course_pk: str, path: str) -> tuple[bytes, str] | None:
        with db.reading(self.engine) as conn:
            content = conn.scalar(sa.select(t.files.c.content).where(
                t.files.c.course == course_pk, t.files.c.path_hash == digest(path)))
        if content is None:
            return None
        return bytes(content), mimetypes.guess_type(path)[0] or "application/octet-stream"

    # --- launch -------------------------------------------------------------------------

    def launch(self, course_pk: str, au_ref: int | str, actor: dict, *, root_url: str,
               registration: str | None = None, launch_mode: str = "Normal", return_url: str | None = None) -> Launch:
        """Open a session: LMS.LaunchData written, `launched` recorded, the launch URL."""
        course = self.course(course_pk)
        index, au = _find_au(course, au_ref)
        _check_actor(actor)
        if launch_mode not in c.LAUNCH_MODES:
            raise DomainError(f"launchMode is one of {', '.join(c.LAUNCH_MODES)}", "launchMode")
        registration = (registration or str(uuid.uuid4())).lower()
        if not validation.is_uuid(registration):
            raise DomainError("registration is a UUID", "registration")
        session_id, fetch_secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
        activity_id = self.au_activity_id(course_pk, index)
        root = root_url.rstrip("/") + "/"
        au_url = au.url if "://" in au.url else f"{root}cmi5/content/{course_pk}/{au.url}"
        launch_data = {"contextTemplate": {"contextActivities": {"grouping": [{"id": au.id}]},
                                           "extensions": {c.EXT_SESSION: session_id}},
                       "launchMode": launch_mode, "launchMethod": au.launch_method, "moveOn": au.move_on}
        if au.mastery_score is not None:
            launch_data["masteryScore"] = au.mastery_score
        if au.launch_parameters is not None:
            launch_data["launchParameters"] = au.launch_parameters
        if au.entitlement_key is not None:
            launch_data["entitlementKey"] = {"courseStructure": au.entitlement_key}
        if return_url:
            launch_data["returnURL"] = return_url
        query = urlencode({"endpoint": f"{root}xapi", "fetch": f"{root}cmi5/fetch/{session_id}.{fetch_secret}",
                           "actor": orjson.dumps(actor).decode(), "registration": registration,
                           "activityId": activity_id})
        url = f"{au_url}{'&' if '?' in au_url else '?'}{query}"
        # LMS.LaunchData first, through the LRS's documents (its own transaction): an AU
        # that fetches at once finds it.
        documents.write_retrying(self.engine, _state_scope(activity_id, actor, registration), c.LAUNCH_DATA,
                                 _json(launch_data), documents.JSON, merge=False, if_match=None,
                                 if_none_match=None, require_precondition=False)
        now = self.clock()
        au_obj = st.au_object(activity_id, au.title, au.activity_type)
        with self.engine.begin() as conn:
            reg = _begun(conn, registration, course_pk, actor, now)
            made = self._supersede(conn, course, course_pk, registration, index, now)
            conn.execute(t.sessions.insert().values(
                id=session_id, registration=registration, course=course_pk, au_index=index, launch_mode=launch_mode,
                fetch_hash=_hash(fetch_secret), status="launched", judged=False,
                preferences_read=False, launched_at=now,
                expires_at=now + timedelta(hours=SESSION_HOURS)))
            # moveOn is judged at registration (9.6.1.1-3): what NotApplicable AUs satisfy
            # is said when the registration begins, before its first launched.
            made += self._satisfy(conn, course, course_pk, reg, _records(reg), actor, session_id, now)
            made.append(st.launched(actor, au_obj, registration, session_id, au.id, now, launch_data, url))
            self._store(conn, made)
        return Launch(url, session_id, registration, activity_id)

    def _supersede(self, conn: Connection, course: structure.Course, course_pk: str, registration: str,
                   index: int, now: datetime) -> list[dict]:
        """A new launch ends the AU's sessions still open in the registration: abandoned if
        they had begun (initialized), closed silently if the AU never started."""
        rows = conn.execute(sa.select(t.sessions).where(
            t.sessions.c.registration == registration, t.sessions.c.au_index == index,
            t.sessions.c.status.in_(_OPEN))).all()
        return [s for row in rows if (s := self._close(conn, course, row, now)) is not None]

    def _close(self, conn: Connection, course: structure.Course, row, now: datetime,
               always: bool = False) -> dict | None:
        began = always or row.status == "initialized"
        conn.execute(t.sessions.update().where(t.sessions.c.id == row.id)
                     .values(status="abandoned" if began else "closed"))
        if not began:
            return None
        au = course.aus[row.au_index]
        actor = orjson.loads(conn.scalar(sa.select(t.registrations.c.actor)
                                         .where(t.registrations.c.registration == row.registration)))
        au_obj = st.au_object(self.au_activity_id(row.course, row.au_index), au.title, au.activity_type)
        return st.abandoned(actor, au_obj, row.registration, row.id, au.id, now, row.launched_at)

    def abandon(self, session_id: str) -> None:
        """The operator's abandon: the session ends, recorded as abandoned."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.sessions).where(t.sessions.c.id == session_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"no cmi5 session {session_id}", "session")
            if row.status not in _OPEN:
                raise Conflict(f"the session is already {row.status}")
            course = self.course_in(conn, row.course)
            self._store(conn, [self._close(conn, course, row, now, always=True)])

    def expire_sessions(self) -> int:
        """Sessions past their time are abandoned (their tokens already refuse): the
        progress worker's timer (services.progress.service)."""
        now = self.clock()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(t.sessions).where(
                t.sessions.c.status.in_(_OPEN), t.sessions.c.expires_at < now).with_for_update()).all()
            made = []
            for row in rows:
                course = self.course_in(conn, row.course)
                if (s := self._close(conn, course, row, now)) is not None:
                    made.append(s)
            self._store(conn, made)
        return len(rows)

    def course_in(self, conn: Connection, course_pk: str) -> structure.Course:
        return _stored_course(conn, course_pk)

    # --- waive --------------------------------------------------------------------------

    def waive(self, registration: str, au_ref: int | str, reason: str, *, actor: dict | None = None,
              course_pk: str | None = None) -> str:
        """Waive an AU not yet satisfied in the registration; returns the session id the
        waived and satisfied statements carry. A registration nobody has launched in yet
        begins here (a learner who tested out before starting): with the learner's
        `actor`, for `course_pk`, else the course delivering the enrolment's programme."""
        now = self.clock()
        session_id = str(uuid.uuid4())
        registration = registration.lower()
        with self.engine.begin() as conn:
            reg = _registration(conn, registration, lock=True)
            if reg is None or actor is not None or course_pk is not None:
                reg = self._begin_for_waiver(conn, reg, registration, actor, course_pk, now)
            course = self.course_in(conn, reg.course)
            index, au = _find_au(course, au_ref)
            records = _records(reg)
            if moveon.au_satisfied(au.move_on, records.get(au.id, moveon.AuRecord())):
                raise Conflict("the AU is already satisfied in this registration: nothing to waive")
            records[au.id] = moveon.AuRecord(**{**asdict(records.get(au.id, moveon.AuRecord())), "waived": True})
            actor = orjson.loads(reg.actor)
            au_obj = st.au_object(self.au_activity_id(reg.course, index), au.title, au.activity_type)
            made = [st.waived(actor, au_obj, reg.registration, session_id, au.id, now, reason)]
            made += self._satisfy(conn, course, reg.course, reg, records, actor, session_id, now)
            self._store(conn, made)
        return session_id

    def _begin_for_waiver(self, conn: Connection, reg, registration: str, actor: dict | None,
                          course_pk: str | None, now: datetime):
        if reg is None and not validation.is_uuid(registration):
            raise DomainError("registration is a UUID", "registration")
        if course_pk is None:
            course_pk = reg.course if reg is not None else getattr(_enrolment(conn, registration), "cmi5_course", None)
        if course_pk is None:
            raise NotFound(f"no cmi5 registration {registration}, nor an enrolment in a programme delivered "
                           f"by a course: give the course", "registration")
        if conn.scalar(sa.select(t.courses.c.id).where(t.courses.c.id == course_pk)) is None:
            raise NotFound(f"no cmi5 course {course_pk}", "course")
        if actor is None:
            if reg is None:
                raise DomainError("nobody has launched in this registration yet: give the learner's actor", "actor")
            actor = orjson.loads(reg.actor)
        _check_actor(actor)
        return _begun(conn, registration, course_pk, actor, now)

    # --- fetch and the session credential ------------------------------------------------

    def fetch(self, token: str) -> dict:
        """The fetch URL's answer: the auth token once, then the spec's error body."""
        session_id, _, secret = token.partition(".")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.sessions).where(t.sessions.c.id == session_id).with_for_update()).first()
            if row is None or not hmac.compare_digest(row.fetch_hash, _hash(secret)):
                return {"error-code": "2", "error-text": "unknown fetch URL"}
            if row.secret_hash is not None:
                return {"error-code": "1", "error-text": "the auth token of this launch was already fetched"}
            if row.status not in _OPEN or row.expires_at < self.clock():
                return {"error-code": "2", "error-text": f"the session is {row.status} or expired"}
            credential = secrets.token_urlsafe(24)
            conn.execute(t.sessions.update().where(t.sessions.c.id == row.id).values(secret_hash=_hash(credential)))
        token_value = base64.b64encode(f"{KEY_PREFIX}{session_id}:{credential}".encode()).decode()
        return {"auth-token": token_value}

    def owns(self, key: str) -> bool:
        return key.startswith(KEY_PREFIX)

    def authenticate(self, key: str, secret: str) -> Client | None:
        """The session's credential, while the session is open."""
        session_id = key.removeprefix(KEY_PREFIX)
        with db.reading(self.engine) as conn:
            row = conn.execute(sa.select(t.sessions).where(t.sessions.c.id == session_id)).first()
        if (row is None or row.secret_hash is None or not hmac.compare_digest(row.secret_hash, _hash(secret))
                or row.status not in _OPEN or row.expires_at < self.clock()):
            return None
        return Client(key=key, name="cmi5 session", scopes=_SESSION_SCOPES, session=session_id)

    def admit(self, client: Client, method: str, path: str, params: dict[str, str]) -> None:
        """What a session's credential may reach beyond statements (their rules: `store`):
        its own learner's, registration's and AU's state, reading its learner's profile,
        never writing LMS.LaunchData or the learner preferences (the LMS's)."""
        session, _ = self._session(client.session)
        reading = method in ("GET", "HEAD")
        if path.endswith("/statements"):
            return
        if path.endswith("/activities/state"):
            agent = _agent_param(params)
            if (params.get("activityId") != session.activity_id or agent is None
                    or agent_key(agent) != agent_key(session.actor)
                    or params.get("registration", "").lower() != session.registration):
                raise store.Forbidden("cmi5 8.1.2.0-2: a session's credential reaches only its own learner's, "
                                      "registration's and AU's state")
            if not reading and params.get("stateId") in (c.LAUNCH_DATA, None):
                raise store.Forbidden("cmi5 10.2.1.0-5: LMS.LaunchData is the LMS's; an AU only reads it")
            return
        if path.endswith("/agents/profile"):
            agent = _agent_param(params)
            if agent is None:
                return  # xAPI's own answer for a missing agent (400)
            if not reading or agent_key(agent) != agent_key(session.actor):
                raise store.Forbidden("cmi5 11.0.0.0-1: a session's credential only reads its learner's profile")
            if params.get("profileId") == c.LEARNER_PREFERENCES:
                with self.engine.begin() as conn:  # initialized may follow now (rules.Progress)
                    conn.execute(t.sessions.update().where(t.sessions.c.id == session.id)
                                 .values(preferences_read=True))
            return
        if reading and (path.endswith("/activities/profile") or path.endswith("/activities")
                        or path.endswith("/agents")):
            return
        raise store.Forbidden("cmi5: a session's credential does not reach this resource")

    def _session(self, session_id: str, conn: Connection | None = None, lock: bool = False):
        def read(conn):
            q = sa.select(t.sessions).where(t.sessions.c.id == session_id)
            row = conn.execute(q.with_for_update() if lock else q).first()
            reg = _registration(conn, row.registration, lock=lock)
            course = self._structures.get(row.course)
            if course is None:
                course = self.course_in(conn, row.course)
                if len(self._structures) >= 1_000:
                    self._structures.clear()
                self._structures[row.course] = course
            au = course.aus[row.au_index]
            session = rules.Session(id=row.id, actor=orjson.loads(reg.actor), registration=row.registration,
                                    activity_id=self.au_activity_id(row.course, row.au_index),
                                    launch_mode=row.launch_mode, mastery_score=au.mastery_score)
            return session, (row, reg, course, au)
        if conn is not None:
            return read(conn)
        with db.reading(self.engine) as conn:
            return read(conn)

    # --- the AU's statements --------------------------------------------------------------

    def store(self, client: Client, statements: list[dict], prepare: Callable[[], store.Batch],
              parts: dict[str, tuple[str, bytes]], method: str) -> list[str]:
        """Judge the session's statements in order (rules.judge), then store them with
        what they make the LMS say, in one transaction. Refused: 403 naming the rule."""
        with self.engine.begin() as conn:
            session, (row, reg, course, au) = self._session(client.session, conn, lock=True)
            if row.status not in _OPEN:
                raise store.Forbidden(f"cmi5 9.3.0.0-5: the session is {row.status}")
            records = _records(reg)
            record = records.get(au.id, moveon.AuRecord())
            progress = rules.Progress(initialized=row.status == "initialized", completed=record.completed,
                                      passed=record.passed, failed=record.failed, judged=row.judged,
                                      preferences_read=row.preferences_read)
            for statement in statements:
                try:
                    progress = rules.judge(statement, session, progress, method=method)
                except rules.Refused as exc:
                    raise store.Forbidden(str(exc)) from None
            batch = prepare()
            store.save_attachments(conn, [(sha2, ctype, content) for sha2, (ctype, content) in parts.items()])
            ids = store.store(conn, batch, outbox_table=self.outbox, topic=self.topic)
            status = "terminated" if progress.terminated else "initialized" if progress.initialized else row.status
            conn.execute(t.sessions.update().where(t.sessions.c.id == row.id)
                         .values(status=status, judged=progress.judged))
            records[au.id] = moveon.AuRecord(completed=progress.completed, passed=progress.passed,
                                             failed=progress.failed, waived=record.waived)
            now = self.clock()
            self._store(conn, self._satisfy(conn, course, row.course, reg, records, session.actor, session.id, now))
        return ids

    # --- moveOn ---------------------------------------------------------------------------

    def _satisfy(self, conn: Connection, course: structure.Course, course_pk: str, reg, records: dict,
                 actor: dict, session_id: str, now: datetime) -> list[dict]:
        """Save the registration's records; the satisfied statements they newly earn."""
        already = set(orjson.loads(reg.satisfied))
        new = moveon.newly_satisfied(course, records, already)
        conn.execute(t.registrations.update().where(t.registrations.c.registration == reg.registration).values(
            records=_json({k: asdict(v) for k, v in records.items()}), satisfied=_json(sorted(already | set(new)))))
        blocks = {b.id: b for b in course.blocks}
        made = []
        for key in new:
            if key == moveon.COURSE:
                made.append(st.satisfied(actor, self.course_activity_id(course_pk), c.TYPE_COURSE, course.title,
                                         reg.registration, session_id, course.id, now,
                                         self.required_modules(course_pk, course)))
            else:
                made.append(st.satisfied(actor, self.block_activity_id(course_pk, key), c.TYPE_BLOCK,
                                         blocks[key].title, reg.registration, session_id, key, now))
        return made

    def _store(self, conn: Connection, made: list[dict]) -> None:
        """The LMS's statements, stored and staged for the topic as any other."""
        if made:
            store.store(conn, store.rows_for(made, topic=self.topic), outbox_table=self.outbox, topic=self.topic)

    def registration_state(self, registration: str) -> dict:
        with db.reading(self.engine) as conn:
            reg = _registration(conn, registration.lower())
            if reg is None:
                raise NotFound(f"no cmi5 registration {registration}", "registration")
            course = self.course_in(conn, reg.course)
        records = _records(reg)
        satisfied = set(orjson.loads(reg.satisfied))
        return {"registration": reg.registration, "course": reg.course, "actor": orjson.loads(reg.actor),
                "satisfied": moveon.COURSE in satisfied,
                "aus": [{"index": i, "id": au.id, **asdict(records.get(au.id, moveon.AuRecord())),
                         "satisfied": moveon.au_satisfied(au.move_on, records.get(au.id, moveon.AuRecord()))}
                        for i, au in enumerate(course.aus)]}


def au_states(conn: Connection, course_pk: str, registrations: list[str]) -> dict | None:
    """Each AU's state (moveon.au_state) for a page of learners, in two queries:
    {"course": {"id", "aus": [{"id", "title"}]}, "states": {registration: [state per AU]}}.
    None if the course is no longer imported."""
    course = _stored_course(conn, course_pk)
    if course is None:
        return None
    aus = course.aus
    records = {reg.registration: _records(reg) for reg in conn.execute(
        sa.select(t.registrations).where(t.registrations.c.registration.in_(registrations),
                                         t.registrations.c.course == course_pk))}
    # The AU's latest session: the open one if any (a launch closes the others), else the
    # last launched.
    latest: dict[tuple[str, int], str] = {}
    for session in conn.execute(
            sa.select(t.sessions.c.registration, t.sessions.c.au_index, t.sessions.c.status)
            .where(t.sessions.c.registration.in_(registrations), t.sessions.c.course == course_pk)
            .order_by(t.sessions.c.launched_at)):
        key = (session.registration, session.au_index)
        if latest.get(key) not in _OPEN:
            latest[key] = session.status
    states = {registration: [moveon.au_state(au.move_on, records.get(registration, {}).get(au.id, moveon.AuRecord()),
                                             latest.get((registration, index)))
                             for index, au in enumerate(aus)]
              for registration in registrations}
    return {"course": {"id": course_pk, "aus": [{"id": au.id, "title": au.title} for au in aus]}, "states": states}


def _find_au(course: structure.Course, au_ref: int | str) -> tuple[int, structure.Au]:
    aus = course.aus
    if isinstance(au_ref, bool):
        raise NotFound(f"the course has no AU {au_ref}", "au")
    if isinstance(au_ref, int) or (isinstance(au_ref, str) and au_ref.isascii() and au_ref.isdigit()):
        index = int(au_ref)
        if not 0 <= index < len(aus):
            raise NotFound(f"the course has no AU {index}", "au")
        return index, aus[index]
    for index, au in enumerate(aus):
        if au.id == au_ref:
            return index, au
    raise NotFound(f"the course has no AU {au_ref}", "au")


def _state_scope(activity_id: str, actor: dict, registration: str) -> documents.Scope:
    return documents.Scope("state", activity_id, agent_key(actor), registration)


def _stored_course(conn: Connection, course_pk: str) -> structure.Course | None:
    row = conn.execute(sa.select(t.courses.c.structure).where(t.courses.c.id == course_pk)).first()
    return None if row is None else structure.from_dict(orjson.loads(row.structure))


def _check_actor(actor: dict) -> None:
    try:
        validation.actor(actor, "actor", validation.V1, allow_group=False)
    except validation.Invalid as exc:
        raise DomainError(str(exc), "actor") from None


def _begun(conn: Connection, registration: str, course_pk: str, actor: dict, now: datetime):
    """The registration's row, locked, made if new; Conflict if it is another course's or
    another learner's. A registration that is a campaign enrolment begins only for its
    learner, and in the course delivering its programme if one does."""
    reg = _registration(conn, registration, lock=True)
    if reg is None:
        enrolment = _enrolment(conn, registration)
        if enrolment is not None and enrolment.learner_key != xapi.learner_key(actor):
            raise Conflict("the registration is the enrolment of another learner: launch with the actor it was "
                           "enrolled with (cmi5 asks for an account, so enrol a cmi5 programme's learners by "
                           "account)", "actor")
        if enrolment is not None and enrolment.cmi5_course not in (None, course_pk):
            raise Conflict("the enrolment's programme is delivered by another course", "course")
        conn.execute(t.registrations.insert().values(
            registration=registration, course=course_pk, actor=_json(actor), records=b"{}",
            satisfied=b"[]", created_at=now))
        reg = _registration(conn, registration, lock=True)
    if reg.course != course_pk or agent_key(orjson.loads(reg.actor)) != agent_key(actor):
        raise Conflict("the registration belongs to another course or learner", "registration")
    return reg


def _enrolment(conn: Connection, registration: str):
    """The campaign enrolment with this registration, as progress knows it: its learner
    and the course delivering its programme (None if none does); None if no enrolment."""
    le, programmes = service_tables.learner_enrolments, service_tables.programmes
    return conn.execute(sa.select(le.c.learner_key, programmes.c.cmi5_course).select_from(
        le.outerjoin(programmes, programmes.c.id == le.c.programme_id))
        .where(le.c.registration == registration)).first()


def _registration(conn: Connection, registration: str, lock: bool = False):
    q = sa.select(t.registrations).where(t.registrations.c.registration == registration)
    return conn.execute(q.with_for_update() if lock else q).first()


def _records(reg) -> dict[str, moveon.AuRecord]:
    return {k: moveon.AuRecord(**v) for k, v in orjson.loads(reg.records).items()}


def _agent_param(params: dict[str, str]) -> dict | None:
    raw = params.get("agent")
    if raw is None:
        return None
    try:
        agent = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return agent if isinstance(agent, dict) else None
