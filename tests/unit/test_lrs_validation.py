"""xAPI statement validation, signatures and multipart parsing (no database)."""
from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib

import orjson
import pytest

from services.progress.lrs import attachments, signatures, validation
from services.progress.lrs.validation import V1, V2, Invalid
from shared import xapi

ACTOR = {"objectType": "Agent", "mbox": "mailto:a@example.org", "name": "A"}
VERB = {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}}
ACTIVITY = {"objectType": "Activity", "id": "http://example.org/a",
            "definition": {"name": {"en-US": "A"}, "type": "http://adlnet.gov/expapi/activities/module"}}
BASE = {"actor": ACTOR, "verb": VERB, "object": ACTIVITY}


def with_(path: str, value, base=BASE) -> dict:
    built = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = built
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return built


def without(path: str, base=BASE) -> dict:
    built = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = built
    for key in parents:
        target = target[key]
    del target[last]
    return built


VALID = {
    "minimal": BASE,
    "with id": with_("id", "9c1b7a2e-5f4e-4d7a-9b1e-2a3b4c5d6e7f"),
    "account actor": with_("actor", {"account": {"homePage": "https://lms.example", "name": "u1"}}),
    "sha1 actor": with_("actor", {"mbox_sha1sum": "a" * 40}),
    "openid actor": with_("actor", {"openid": "https://id.example/u1"}),
    "anonymous group": with_("actor", {"objectType": "Group", "member": [ACTOR]}),
    "identified group": with_("actor", {"objectType": "Group", "mbox": "mailto:g@example.org"}),
    "agent object": with_("object", {"objectType": "Agent", "mbox": "mailto:b@example.org"}),
    "statement ref": with_("object", {"objectType": "StatementRef", "id": "9c1b7a2e-5f4e-4d7a-9b1e-2a3b4c5d6e7f"}),
    "substatement": with_("object", {"objectType": "SubStatement", "actor": ACTOR, "verb": VERB,
                                     "object": ACTIVITY}),
    "result": with_("result", {"score": {"scaled": 0.5, "raw": 5, "min": 0, "max": 10}, "success": True,
                               "completion": True, "response": "x", "duration": "PT1H2M3.45S",
                               "extensions": {"http://example.org/ext": {"any": None}}}),
    "context": with_("context", {"registration": "9c1b7a2e-5f4e-4d7a-9b1e-2a3b4c5d6e7f",
                                 "contextActivities": {"parent": ACTIVITY, "grouping": [ACTIVITY]},
                                 "instructor": ACTOR, "language": "en-GB", "platform": "LMS", "revision": "1"}),
    "timestamp with offset": with_("timestamp", "2024-05-01T10:00:00.123+02:00"),
    "version": with_("version", "1.0.3"),
    "attachment with fileUrl": with_("attachments", [{
        "usageType": "http://example.org/usage", "display": {"en-US": "file"}, "contentType": "text/plain",
        "length": 3, "sha2": "a" * 64, "fileUrl": "https://files.example/f"}]),
    "interaction": with_("object.definition", {"interactionType": "choice", "correctResponsesPattern": ["a"],
                                               "choices": [{"id": "a", "description": {"en-US": "A"}},
                                                           {"id": "b"}]}),
}

INVALID = {
    "no actor": without("actor"),
    "no verb": without("verb"),
    "no object": without("object"),
    "id not uuid": with_("id", "not-a-uuid"),
    "two IFIs": with_("actor", {"mbox": "mailto:a@example.org", "openid": "https://id.example/u"}),
    "no IFI": with_("actor", {"name": "nobody"}),
    "mbox without mailto": with_("actor", {"mbox": "a@example.org"}),
    "bad sha1": with_("actor", {"mbox_sha1sum": "xyz"}),
    "account without name": with_("actor", {"account": {"homePage": "https://lms.example"}}),
    "group member is a group": with_("actor", {"objectType": "Group", "member": [
        {"objectType": "Group", "member": [ACTOR]}]}),
    "anonymous group without members": with_("actor", {"objectType": "Group"}),
    "verb id not IRI": with_("verb", {"id": "completed"}),
    "bad language tag": with_("verb", {"id": VERB["id"], "display": {"not a tag": "x"}}),
    "miscased key": with_("Actor", ACTOR),
    "unknown key": with_("foo", "bar"),
    "null value": with_("result", None),
    "activity without id": with_("object", {"objectType": "Activity"}),
    "unknown interaction type": with_("object.definition", {"interactionType": "essay"}),
    "duplicate component id": with_("object.definition", {"interactionType": "choice",
                                                          "choices": [{"id": "a"}, {"id": "a"}]}),
    "nested substatement": with_("object", {"objectType": "SubStatement", "actor": ACTOR, "verb": VERB,
                                            "object": {"objectType": "SubStatement", "actor": ACTOR, "verb": VERB,
                                                       "object": ACTIVITY}}),
    "substatement with id": with_("object", {"objectType": "SubStatement", "id": "9c1b7a2e-5f4e-4d7a-9b1e-2a3b4c5d6e7f",
                                             "actor": ACTOR, "verb": VERB, "object": ACTIVITY}),
    "scaled out of range": with_("result", {"score": {"scaled": 1.5}}),
    "raw above max": with_("result", {"score": {"raw": 11, "max": 10}}),
    "success not bool": with_("result", {"success": "yes"}),
    "bad duration": with_("result", {"duration": "1 hour"}),
    "extension key not IRI": with_("result", {"extensions": {"key": 1}}),
    "registration not uuid": with_("context", {"registration": "r1"}),
    "platform on agent object": with_("context", {"platform": "LMS"},
                                      with_("object", {"objectType": "Agent", "mbox": "mailto:b@example.org"})),
    "team not a group": with_("context", {"team": ACTOR}),
    "timestamp not ISO": with_("timestamp", "01/02/2024"),
    "timestamp -00:00": with_("timestamp", "2024-05-01T10:00:00.000-00:00"),
    "version 1.1": with_("version", "1.1.0"),
    "voiding non-ref": with_("verb", {"id": xapi.VOIDED.id}),
    "attachment without sha2": with_("attachments", [{"usageType": "http://example.org/u",
                                                      "display": {"en-US": "f"}, "contentType": "text/plain",
                                                      "length": 1}]),
    "identified group authority": with_("authority", {"objectType": "Group", "mbox": "mailto:g@example.org",
                                                      "member": [ACTOR, ACTOR]}),
}


@pytest.mark.parametrize("name", VALID)
@pytest.mark.parametrize("version", [V1, V2])
def test_valid_statements_pass(name, version):
    validation.statement(copy.deepcopy(VALID[name]), version)


@pytest.mark.parametrize("name", INVALID)
@pytest.mark.parametrize("version", [V1, V2])
def test_invalid_statements_are_rejected(name, version):
    with pytest.raises(Invalid):
        validation.statement(copy.deepcopy(INVALID[name]), version)


def test_context_agents_exist_only_in_2_0():
    stmt = with_("context", {"contextAgents": [{"objectType": "contextAgent", "agent": ACTOR,
                                                "relevantTypes": ["http://example.org/t"]}],
                             "contextGroups": [{"objectType": "contextGroup",
                                                "group": {"objectType": "Group", "member": [ACTOR]}}]})
    validation.statement(copy.deepcopy(stmt), V2)
    with pytest.raises(Invalid):
        validation.statement(copy.deepcopy(stmt), V1)
    with pytest.raises(Invalid):
        validation.statement(with_("context", {"contextAgents": [{"objectType": "contextAgent", "agent": ACTOR,
                                                                  "relevantTypes": []}]}), V2)


@pytest.mark.parametrize("text,expected", [
    ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
    ("2024-05-01T12:00:00.5+02:00", dt.datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=dt.UTC)),
])
def test_timestamps_are_read_as_utc(text, expected):
    assert validation.parse_timestamp(text) == expected


@pytest.mark.parametrize("text,expected", [
    # The producers' own shape, which a faster path reads, and its near misses, which it must not.
    ("2026-11-23T08:00:00.123Z", dt.datetime(2026, 11, 23, 8, 0, 0, 123000, tzinfo=dt.UTC)),
    ("2026-11-23T08:00:00.12\u0661Z", None),  # an Arabic-Indic digit
    ("\u0662026-11-23T08:00:00Z", None),
    ("2026-02-30T08:00:00.123Z", None),
    ("2026-11-23T08:00:00,123Z", None),
    ("2026-11-23T08:00:00.123+00:00", dt.datetime(2026, 11, 23, 8, 0, 0, 123000, tzinfo=dt.UTC)),
])
def test_the_canonical_shape_and_its_near_misses(text, expected):
    if expected is None:
        with pytest.raises(Invalid):
            validation.parse_timestamp(text)
    else:
        parsed = validation.parse_timestamp(text)
        assert parsed == expected and parsed.utcoffset() == dt.timedelta(0)


def test_durations_compare_to_hundredths():
    assert validation.comparable_duration("PT1.23456S") == "PT1.23S"
    assert validation.comparable({"result": {"duration": "PT1.2399S"}, "stored": "x"}) == \
        {"result": {"duration": "PT1.23S"}}


def _jws(payload: dict, alg="RS256", key=None, x5c=None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    header = {"alg": alg}
    if x5c:
        header["x5c"] = x5c
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(payload))}".encode()
    signature = b"sig"
    if key is not None:
        signature = key.sign(signing_input, padding.PKCS1v15(), getattr(hashes, "SHA" + alg[2:])())
    return signing_input + b"." + b64(signature).encode()


def _certificate():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_signed_statement_verifies_with_its_certificate(alg):
    key, cert = _certificate()
    statement = copy.deepcopy(BASE)
    signatures.verify(statement, _jws(statement, alg, key, [cert]))
    other, _ = _certificate()
    with pytest.raises(Invalid, match="does not verify"):
        signatures.verify(statement, _jws(statement, alg, other, [cert]))


def test_signature_rules():
    statement = copy.deepcopy(BASE)
    signatures.verify(statement, _jws(statement))  # no x5c: structure and payload only
    with pytest.raises(Invalid, match="algorithm"):
        signatures.verify(statement, _jws(statement, alg="HS256"))
    with pytest.raises(Invalid, match="differs"):
        signatures.verify(statement, _jws(with_("verb", {"id": "http://example.org/other"})))
    with pytest.raises(Invalid):
        signatures.verify(statement, b"not a jws")


def test_multipart_parts_are_checked_against_their_hash():
    content = b"hello"
    sha2 = hashlib.sha256(content).hexdigest()
    body = (b"--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n"
            b"Content-Transfer-Encoding: binary\r\nX-Experience-API-Hash: " + sha2.encode() + b"\r\n\r\n" +
            content + b"\r\n--b--")
    statement_part, parts = attachments.parse_multipart("multipart/mixed; boundary=b", body)
    assert statement_part == b"{}" and parts == {sha2: ("text/plain", content)}
    with pytest.raises(Invalid, match="does not match"):
        attachments.parse_multipart("multipart/mixed; boundary=b", body.replace(b"hello", b"jello"))
    with pytest.raises(Invalid, match="boundary"):
        attachments.parse_multipart("multipart/mixed", body)
