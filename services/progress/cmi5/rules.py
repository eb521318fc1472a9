"""What an AU may send in a cmi5 session (cmi5 spec sections 9 and 10), judged one
statement at a time against the session and its registration so far.

`judge` takes a statement as the AU sent it (before the LRS fills in id, timestamp or
authority, since their absence breaks rules of their own) and the session's `Progress`,
and returns the progress after it, or raises `Refused` naming the requirement. The LMS
refuses with 403: the spec asks an LMS to reject such statements with 403 Forbidden.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from services.progress.cmi5 import terms as c


class Refused(Exception):
    def __init__(self, requirement: str, message: str):
        super().__init__(f"cmi5 {requirement}: {message}")
        self.requirement = requirement


@dataclass(frozen=True)
class Session:
    """What the launch fixed: who, which registration, which AU, in which mode."""

    id: str
    actor: dict
    registration: str
    activity_id: str  # the LMS's id of the AU, the object of every cmi5 defined statement
    launch_mode: str = "Normal"
    mastery_score: float | None = None


@dataclass(frozen=True)
class Progress:
    """The session's statements so far, and the registration's for this AU."""

    initialized: bool = False
    terminated: bool = False
    completed: bool = False  # in the registration: at most once (9.3.0.0-2)
    passed: bool = False  # in the registration: at most once, and no failed after it (9.3.0.0-8)
    failed: bool = False
    judged: bool = False  # this session sent passed or failed: once per session (9.3.0.0-2, -3)
    preferences_read: bool = False  # the AU read cmi5LearnerPreferences, as it must before initialized


def _ifi(agent: dict) -> dict:
    return {k: agent[k] for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in agent}


def _categories(statement: dict) -> set[str]:
    found = ((statement.get("context") or {}).get("contextActivities") or {}).get("category") or []
    if isinstance(found, dict):
        found = [found]
    return {item.get("id") for item in found if isinstance(item, dict)}


def _utc(timestamp: str) -> bool:
    return timestamp.endswith(("Z", "z", "+00:00", "-00:00", "+0000", "+00"))


def judge(statement: dict, session: Session, progress: Progress, *, method: str = "POST") -> Progress:
    """The progress after `statement`, or Refused."""
    if progress.terminated:
        raise Refused("9.3.0.0-5", "the session is terminated: no statement may follow terminated")
    if method == "POST" and "id" not in statement:
        raise Refused("9.1.0.0-1", "an AU gives every statement its id")
    if "timestamp" not in statement:
        raise Refused("9.7.0.0-1", "an AU gives every statement a timestamp")
    if not _utc(str(statement["timestamp"])):
        raise Refused("9.7.0.0-2", "timestamps are in UTC")
    actor = statement.get("actor") or {}
    if actor.get("objectType", "Agent") != "Agent" or "account" not in actor:
        raise Refused("9.2.0.0-2", "the actor is an Agent identified by an account")
    if _ifi(actor) != _ifi(session.actor):
        raise Refused("9.2.0.0-3", "the actor is the learner the AU was launched for")
    verb = (statement.get("verb") or {}).get("id")
    if verb == c.VOIDED:
        raise Refused("6.3.0.0-1", "an AU may not void statements")
    context = statement.get("context")
    if not isinstance(context, dict):
        raise Refused("9.6.0.0-1", "every statement has a context")
    if str(context.get("registration", "")).lower() != session.registration:
        raise Refused("9.6.1.0-1", "the context's registration is the launch's")
    extensions = context.get("extensions") or {}
    if extensions.get(c.EXT_SESSION) != session.id:
        raise Refused("9.6.3.1-4", "the context's sessionid extension is the launch's")
    categories = _categories(statement)
    if c.CATEGORY_MOVEON in categories and verb not in c.MOVE_ON_VERBS:
        raise Refused("9.6.2.2-2", "only completed, passed and failed carry the moveon category")
    if not progress.initialized and verb != c.INITIALIZED:
        raise Refused("9.3.0.0-4", "the first statement of a session is initialized")
    if verb not in c.AU_DEFINED:
        return progress  # a cmi5 allowed statement: nothing more to check
    name = c.VERB_NAMES[verb]
    obj = statement.get("object") or {}
    if obj.get("objectType", "Activity") != "Activity" or obj.get("id") != session.activity_id:
        raise Refused("8.1.5.0-6", f"the object of {name} is the AU's activityId from the launch")
    if c.CATEGORY_CMI5 not in categories:
        raise Refused("9.6.2.1-1", f"{name} carries the cmi5 category activity")
    result = statement.get("result") or {}
    if verb == c.INITIALIZED:
        if progress.initialized:
            raise Refused("9.3.2.0-3", "initialized is sent once per session")
        if not progress.preferences_read:
            raise Refused("11.0.0.0-3", "the AU reads the learner preferences (agent profile "
                                        "cmi5LearnerPreferences) before it sends initialized")
        return replace(progress, initialized=True)
    if verb == c.TERMINATED:
        if "duration" not in result:
            raise Refused("9.5.4.1-1", "terminated carries result.duration")
        return replace(progress, terminated=True)
    if session.launch_mode != "Normal":
        raise Refused("10.2.2.0-2" if session.launch_mode == "Browse" else "10.2.2.0-3",
                      f"{name} is not sent in launchMode {session.launch_mode}")
    if c.CATEGORY_MOVEON not in categories:
        raise Refused("9.6.2.2-1", f"{name} carries the moveon category activity")
    if verb == c.COMPLETED:
        return _completed(result, progress)
    return _judged(verb == c.PASSED, result, extensions, session, progress)


def _completed(result: dict, progress: Progress) -> Progress:
    if progress.completed:
        raise Refused("9.3.0.0-2", "completed is sent once per registration")
    if result.get("completion") is not True:
        raise Refused("9.5.3.0-1", "completed carries result.completion true")
    if "success" in result:
        raise Refused("9.5.2.0-3", "completed carries no result.success")
    if "score" in result:
        raise Refused("9.5.1.0-2", "completed carries no result.score")
    if "duration" not in result:
        raise Refused("9.5.4.1-2", "completed carries result.duration")
    return replace(progress, completed=True)


def _judged(passed: bool, result: dict, extensions: dict, session: Session, progress: Progress) -> Progress:
    name = "passed" if passed else "failed"
    if progress.judged and not progress.passed:
        raise Refused("9.3.0.0-3" if passed else "9.3.0.0-2",
                      "no passed after failed in a session" if passed else "failed is sent once per session")
    if progress.passed:
        raise Refused("9.3.0.0-2" if passed else "9.3.0.0-8",
                      "passed is sent once per registration" if passed else "no failed after passed")
    if result.get("success") is not passed:
        raise Refused("9.5.2.0-1" if passed else "9.5.2.0-2", f"{name} carries result.success {str(passed).lower()}")
    if "completion" in result:
        raise Refused("9.5.3.0-2", f"{name} carries no result.completion")
    if "duration" not in result:
        raise Refused("9.5.4.1-3" if passed else "9.5.4.1-4", f"{name} carries result.duration")
    score = result.get("score") or {}
    if "raw" in score and "min" not in score:
        raise Refused("9.5.1.0-3", f"a raw score of {name} comes with min")
    if "raw" in score and "max" not in score:
        raise Refused("9.5.1.0-3", f"a raw score of {name} comes with max")
    if session.mastery_score is not None:
        scaled = score.get("scaled")
        # The extension comes with the scaled score it was judged against (as AUs built on
        # ADL's cmi5.js send it); when sent, it is the launch's.
        if (scaled is not None or c.EXT_MASTERY in extensions) and \
                extensions.get(c.EXT_MASTERY) != session.mastery_score:
            raise Refused("9.6.3.2-2", f"{name} carries the masteryscore extension of the launch")
        if scaled is not None:
            below = Decimal(str(scaled)) < Decimal(str(session.mastery_score))
            if passed and below:
                raise Refused("9.3.4.0-2", "passed needs a scaled score of at least the masteryScore")
            if not passed and not below:
                raise Refused("9.3.5.0-2", "failed needs a scaled score below the masteryScore")
    return replace(progress, judged=True, **{name: True})
