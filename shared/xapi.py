"""xAPI 1.0.3 statements: the one event format on the bus (docs/architecture.md, Events).

Building, encoding and parsing statements lives here so that every producer writes the
same shape and every consumer reads it with the same parser. Pure Python: no Flask,
SQLAlchemy or Kafka.
"""
from __future__ import annotations

import functools
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import orjson

from shared.errors import Unprocessable

XAPI_VERSION = "1.0.3"
PROJECT_IRI = "https://learnstream.dev/xapi"


class Verb(NamedTuple):
    id: str
    display: str

    def as_dict(self) -> dict:
        return {"id": self.id, "display": {"en-US": self.display}}


# ADL vocabulary and the xAPI registry where one fits; ours under PROJECT_IRI otherwise
# (each of ours is listed in docs/events.md).
REGISTERED = Verb("http://adlnet.gov/expapi/verbs/registered", "registered")
DEFINED = Verb(f"{PROJECT_IRI}/verbs/defined", "defined")
WITHDREW = Verb(f"{PROJECT_IRI}/verbs/withdrew", "withdrew from")
REMOVED = Verb(f"{PROJECT_IRI}/verbs/removed", "removed")

# A voiding statement (xAPI 2.3.2): its object, a StatementRef, names the statement it
# takes back. The LRS marks the target voided; every read model drops what it counted.
VOIDED = Verb("http://adlnet.gov/expapi/verbs/voided", "voided")

# The properties an LRS sets on a statement it stores (xAPI 2.0 §2.2.s4): `stored` and
# `authority` always; `id`, `timestamp` (= stored) and `version` when the statement came
# without them. A statement sent again under a stored id is the same one if it differs
# only in these (the timestamp only where the LRS set it: xAPI's comparison rules).
SET_BY_LRS = ("id", "timestamp", "stored", "authority", "version")

ACTIVITY_TYPE_PROGRAMME = "http://adlnet.gov/expapi/activities/course"
ACTIVITY_TYPE_COHORT = f"{PROJECT_IRI}/activity-types/cohort"

EXT = f"{PROJECT_IRI}/extensions"
EXT_PROGRAMME = f"{EXT}/programme"
EXT_COHORT = f"{EXT}/cohort"
EXT_CMI5_COURSE = f"{EXT}/cmi5-course"
EXT_DEADLINE = f"{EXT}/deadline"
EXT_ORGANISATION = f"{EXT}/organisation"
EXT_REASON = f"{EXT}/reason"
# On a satisfied statement of a cmi5 course (its object's definition): the programme modules
# the course stands for, each of which the satisfied course counts as completed.
EXT_MODULES = f"{EXT}/modules"


class InvalidStatement(Unprocessable, ValueError):
    """A record that is not a usable xAPI statement; the reason says why. On the bus it is
    unprocessable: retrying it can never help."""


# How deep a statement may nest (the statement object is level 1; extension values are
# the only part xAPI leaves free, so they are where depth comes from). Every path takes
# 252: orjson parses 1,024 levels but serialises only 254, and the deepest serialisation
# is a GET /xapi/statements page, which wraps each statement in two more ({"statements":
# [...]}); the LRS's rows, the outbox and Kafka carry the statement itself, the
# consumers parse with orjson (1,024) and the progress worker serialises it again to
# store it (254); validation and comparison recurse only through xAPI's fixed shape.
# 128 leaves half of that for envelopes yet to come; no real profile's extension comes
# near it. Deeper is refused (LRS: 400; consumers: dead letter) before any other work.
MAX_DEPTH = 128


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests more than `limit` objects or arrays deep (a
    scalar is 0 deep, `{}` 1). Recursive to at most `limit` + 1 frames: ~7 µs for a
    typical statement, the cheapest walk measured (an explicit stack took twice that)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    if limit <= 0:
        return True
    for child in value.values() if kind is dict else value:
        kind = type(child)
        if (kind is dict or kind is list) and too_deep(child, limit - 1):
            return True
    return False


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# re.ASCII: \d is 0-9 only, not every script's digits ("\u0661" is a digit to Python).
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):?(\d{2})|[+-]\d{2})?$",
    re.ASCII)


def parse_timestamp(value, path: str = "timestamp") -> datetime:
    """The one timestamp parser: ISO 8601 / RFC 3339 date-time as xAPI allows it (the
    negative zero offset refused, xAPI 4.5), read as UTC. Every statement's timestamps
    and every one a service puts in an extension go through it: the LRS validating a
    client's statement (its InvalidStatement is a 400 there) and every consumer reading
    the bus (a dead letter there). No zone means UTC."""
    if not isinstance(value, str):
        raise InvalidStatement(f"{path}: must be a string timestamp")
    # What every producer writes (format_timestamp) is the one shape the C parser can
    # take on trust: "YYYY-MM-DDTHH:MM:SS.fffZ". Anything else, or anything it refuses,
    # goes the strict way below, which also words the error.
    if len(value) == 24 and value[23] == "Z" and value[10] == "T" and value[19] == "." and value.isascii():
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    match = _TIMESTAMP.match(value)
    if not match:
        raise InvalidStatement(f"{path}: is not an ISO 8601 timestamp")
    zone = match.group(8)
    if zone and zone[0] == "-" and zone.replace(":", "").strip("-0") == "":
        raise InvalidStatement(f"{path}: must not use the offset -00:00")
    if zone and len(zone) == 3:  # "+05": ISO 8601 allows hours only, RFC 3339 does not
        raise InvalidStatement(f"{path}: offset must be hours and minutes")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59), micro)
    except ValueError:
        raise InvalidStatement(f"{path}: is not a valid date and time") from None
    if zone is None or zone in "Zz":
        return moment.replace(tzinfo=UTC)
    offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
    if offset >= timedelta(hours=24):
        raise InvalidStatement(f"{path}: offset out of range")
    sign = 1 if match.group(9) == "+" else -1
    return moment.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)


def agent(
    *, name: str | None = None, email: str | None = None,
    account_home_page: str | None = None, account_name: str | None = None,
) -> dict:
    """An Agent identified by exactly one inverse functional identifier."""
    actor: dict[str, Any] = {"objectType": "Agent"}
    if name:
        actor["name"] = name
    if email:
        actor["mbox"] = f"mailto:{email.strip().lower()}"
    elif account_home_page and account_name:
        actor["account"] = {"homePage": account_home_page, "name": account_name}
    else:
        raise InvalidStatement("an agent needs an email or an account (homePage and name)")
    return actor


def service_agent(service: str) -> dict:
    return agent(name=f"learnstream {service}", account_home_page="https://learnstream.dev", account_name=service)


def operator_agent(operator: str) -> dict:
    return agent(name=operator, account_home_page="https://learnstream.dev/operators", account_name=operator)


def inverse_functional_identifier(actor: dict) -> str:
    """The actor's identity as one canonical string (xAPI 1.0.3 §2.4.2.1)."""
    if not isinstance(actor, dict):
        raise InvalidStatement("actor must be an object")
    if actor.get("mbox"):
        return f"mbox:{str(actor['mbox']).lower()}"
    if actor.get("mbox_sha1sum"):
        return f"mbox_sha1sum:{str(actor['mbox_sha1sum']).lower()}"
    if actor.get("openid"):
        return f"openid:{actor['openid']}"
    account = actor.get("account")
    if isinstance(account, dict) and account.get("homePage") and account.get("name"):
        return f"account:{account['homePage']}|{account['name']}"
    if actor.get("objectType") == "Group" and actor.get("member"):
        # An anonymous group has no IFI of its own; its members identify it.
        if not isinstance(actor["member"], list):
            raise InvalidStatement("a group's member must be an array of agents")
        return "group:" + ",".join(sorted(inverse_functional_identifier(m) for m in actor["member"]))
    raise InvalidStatement("actor has no inverse functional identifier (mbox, mbox_sha1sum, openid or account)")


def learner_key(actor: dict) -> str:
    """The partition key: a stable hash of the learner's IFI.

    Hashing keeps personal data (emails) out of Kafka keys, logs and metrics while still
    sending every fact about one learner to one partition, in order.
    """
    return _hashed(inverse_functional_identifier(actor))


@functools.lru_cache(maxsize=65_536)  # a learner's statements come in runs
def _hashed(ifi: str) -> str:
    return hashlib.sha256(ifi.encode()).hexdigest()[:32]


def activity(activity_id: str, *, name: str | None = None, type_: str | None = None,
             extensions: dict | None = None) -> dict:
    definition: dict[str, Any] = {}
    if name:
        definition["name"] = {"en-US": name}
    if type_:
        definition["type"] = type_
    if extensions:
        definition["extensions"] = extensions
    obj: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if definition:
        obj["definition"] = definition
    return obj


def statement(
    actor: dict, verb: Verb, obj: dict, *, authority: dict,
    registration: str | None = None, parent: dict | None = None, grouping: dict | None = None,
    context_extensions: dict | None = None, result: dict | None = None,
    timestamp: datetime | None = None, statement_id: str | None = None,
) -> dict:
    moment = format_timestamp(timestamp or utc_now())
    built: dict[str, Any] = {
        "id": statement_id or str(uuid.uuid4()),
        "actor": actor,
        "verb": verb.as_dict(),
        "object": obj,
    }
    if result:
        built["result"] = result
    context: dict[str, Any] = {}
    if registration:
        context["registration"] = registration
    activities = {}
    if parent:
        activities["parent"] = [parent]
    if grouping:
        activities["grouping"] = [grouping]
    if activities:
        context["contextActivities"] = activities
    if context_extensions:
        context["extensions"] = context_extensions
    if context:
        built["context"] = context
    built.update(timestamp=moment, stored=moment, authority=authority, version=XAPI_VERSION)
    return built


def encode(stmt: dict) -> bytes:
    return orjson.dumps(stmt)


_ID_FIRST = b'{"id":"'


def statement_id(payload: bytes) -> str:
    """The id of an encoded statement, without parsing all of it when `encode` put the id
    first (the relay asks for every record it publishes; a full parse costs ~15 times
    more). The slice is the top-level id: JSON escapes any quote inside a string, so a
    value that starts here and ends with a quote 36 bytes on is the whole id."""
    if payload.startswith(_ID_FIRST) and payload[43:44] == b'"':
        return payload[7:43].decode()
    return str(orjson.loads(payload)["id"])


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def decode(raw: bytes | str) -> dict:
    """Parse one statement from the bus. Cheap structural checks only: the producer
    validated it; this guards consumers against records they cannot use."""
    try:
        stmt = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidStatement(f"not JSON: {exc}") from None
    if not isinstance(stmt, dict):
        raise InvalidStatement("a statement must be a JSON object")
    # No value nests deeper than the brackets the text holds: most statements need no walk.
    opening = (b"{", b"[") if isinstance(raw, bytes) else ("{", "[")
    if raw.count(opening[0]) + raw.count(opening[1]) > MAX_DEPTH and too_deep(stmt):
        raise InvalidStatement(f"statement nests more than {MAX_DEPTH} levels deep")
    for required in ("id", "actor", "verb", "object"):
        if required not in stmt:
            raise InvalidStatement(f"statement has no {required!r}")
    if not (isinstance(stmt["id"], str) and _CANONICAL_UUID.fullmatch(stmt["id"])):
        try:  # the forms other than the canonical one that every producer writes
            uuid.UUID(str(stmt["id"]))
        except ValueError:
            raise InvalidStatement("statement id is not a UUID") from None
    if not isinstance(stmt["verb"], dict) or not stmt["verb"].get("id"):
        raise InvalidStatement("statement verb has no id")
    inverse_functional_identifier(stmt["actor"])
    return stmt


# Accessors consumers use, so that the statement shape is known in one place.

def verb_id(stmt: dict) -> str:
    return stmt["verb"]["id"]


def object_id(stmt: dict) -> str | None:
    return stmt["object"].get("id")


def object_extensions(stmt: dict) -> dict:
    return stmt["object"].get("definition", {}).get("extensions", {}) or {}


def context_extensions(stmt: dict) -> dict:
    return stmt.get("context", {}).get("extensions", {}) or {}


def registration(stmt: dict) -> str | None:
    return stmt.get("context", {}).get("registration")


def context_activity(stmt: dict, kind: str) -> dict | None:
    found = stmt.get("context", {}).get("contextActivities", {}).get(kind)
    if isinstance(found, dict):
        return found
    return found[0] if found else None


def moment(stmt: dict) -> datetime | None:
    """When the statement says it happened: its timestamp, else when it was stored.
    Read models decide by this, never by the clock, so a replay decides the same."""
    text = stmt.get("timestamp") or stmt.get("stored")
    return parse_timestamp(text) if text else None


def activity_name(obj: dict | None) -> str | None:
    if not obj:
        return None
    names = obj.get("definition", {}).get("name") or {}
    return names.get("en-US") or next(iter(names.values()), None)


# Assessment (issue 4).
ATTEMPTED = Verb("http://adlnet.gov/expapi/verbs/attempted", "attempted")
ANSWERED = Verb("http://adlnet.gov/expapi/verbs/answered", "answered")
SCORED = Verb("http://adlnet.gov/expapi/verbs/scored", "scored")
PASSED = Verb("http://adlnet.gov/expapi/verbs/passed", "passed")
FAILED = Verb("http://adlnet.gov/expapi/verbs/failed", "failed")
ACTIVITY_TYPE_ASSESSMENT = "http://adlnet.gov/expapi/activities/assessment"
EXT_ATTEMPT = f"{EXT}/attempt"
EXT_FINAL_TEST = f"{EXT}/final-test"

# Certification (issue 5). `earned` is the xAPI registry's; `revoked` is ours (docs/events.md).
EARNED = Verb("http://id.tincanapi.com/verb/earned", "earned")
REVOKED = Verb(f"{PROJECT_IRI}/verbs/revoked", "revoked")
COMPLETED = Verb("http://adlnet.gov/expapi/verbs/completed", "completed")
SATISFIED = Verb("https://w3id.org/xapi/adl/verbs/satisfied", "satisfied")
ACTIVITY_TYPE_CERTIFICATE = "http://id.tincanapi.com/activitytype/certificate"
EXT_CERTIFICATE = f"{EXT}/certificate"
EXT_LEARNER = f"{EXT}/learner"


# A satisfied cmi5 course stands for programme modules (EXT_MODULES): each counts as
# completed, in progress and in certification alike. The facts it yields get ids derived
# from the statement's, so a rebuild makes the same ones.
_MODULE_FACT = uuid.UUID("8d7f3c1e-5b0a-4c39-9a57-2f1e6c4b9d30")


def modules_satisfied(stmt: dict) -> list[tuple[str, str]]:
    """(fact id, module activity id) for each module a satisfied statement stands for."""
    if verb_id(stmt) != SATISFIED.id:
        return []
    modules = object_extensions(stmt).get(EXT_MODULES)
    if not isinstance(modules, list):
        return []
    return [(str(uuid.uuid5(_MODULE_FACT, f"{stmt['id']} {module}")), module)
            for module in dict.fromkeys(m for m in modules if isinstance(m, str) and 0 < len(m) <= 500)]
