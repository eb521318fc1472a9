import pytest

from shared import xapi


def test_learner_key_is_stable_and_case_insensitive_for_email():
    a = xapi.agent(name="A", email="Ana@Example.org")
    b = xapi.agent(name="Another name", email="ana@example.org")
    assert xapi.learner_key(a) == xapi.learner_key(b)
    assert len(xapi.learner_key(a)) == 32
    assert "ana" not in xapi.learner_key(a)


def test_learner_key_differs_between_identifier_kinds():
    by_mail = xapi.agent(email="x@example.org")
    by_account = xapi.agent(account_home_page="https://lms.example.org", account_name="x@example.org")
    assert xapi.learner_key(by_mail) != xapi.learner_key(by_account)


def test_agent_needs_an_identifier():
    with pytest.raises(xapi.InvalidStatement, match="email or an account"):
        xapi.agent(name="Nobody")


def test_statement_round_trip_keeps_context_shape():
    learner = xapi.agent(name="A", email="a@example.org")
    programme = xapi.activity("https://x.test/p/1", name="P")
    cohort = xapi.activity("https://x.test/c/1", name="C")
    stmt = xapi.statement(learner, xapi.REGISTERED, programme, authority=xapi.service_agent("enrollment"),
                          registration="6f1c8a1e-3c6b-4a53-9d0b-0d6f5f3f0c11", parent=programme, grouping=cohort)
    decoded = xapi.decode(xapi.encode(stmt))
    assert decoded == stmt
    assert xapi.registration(decoded) == "6f1c8a1e-3c6b-4a53-9d0b-0d6f5f3f0c11"
    assert xapi.context_activity(decoded, "grouping")["id"] == "https://x.test/c/1"
    assert decoded["version"] == "1.0.3"
    assert decoded["timestamp"].endswith("Z")


@pytest.mark.parametrize("raw, reason", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"id": "x", "actor": {}, "verb": {"id": "v"}, "object": {}}', "not a UUID"),
    (b'{"id": "6f1c8a1e-3c6b-4a53-9d0b-0d6f5f3f0c11", "actor": {"name": "n"}, "verb": {"id": "v"}, "object": {}}',
     "inverse functional identifier"),
    (b'{"id": "6f1c8a1e-3c6b-4a53-9d0b-0d6f5f3f0c11", "verb": {"id": "v"}, "object": {}}', "no 'actor'"),
])
def test_decode_rejects_unusable_records_with_a_reason(raw, reason):
    with pytest.raises(xapi.InvalidStatement, match=reason):
        xapi.decode(raw)


def _nested(levels: int):
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_decode_refuses_a_statement_nested_deeper_than_the_limit():
    """A record every path could not take (orjson serialises 254 levels) is a dead
    letter on the consumer side, not a crash where the progress worker stores it."""
    stmt = xapi.statement(xapi.agent(email="a@x.test"), xapi.COMPLETED, xapi.activity("https://x.test/a"),
                          authority=xapi.service_agent("test"))
    stmt["result"] = {"extensions": {"https://x.test/ext": _nested(xapi.MAX_DEPTH - 3)}}
    assert not xapi.too_deep(stmt) and xapi.decode(xapi.encode(stmt)) == stmt
    stmt["result"]["extensions"]["https://x.test/ext"] = _nested(xapi.MAX_DEPTH - 2)
    assert xapi.too_deep(stmt)
    with pytest.raises(xapi.InvalidStatement, match="levels deep"):
        xapi.decode(xapi.encode(stmt))
    assert xapi.too_deep([[]], 1) and not xapi.too_deep([], 1) and not xapi.too_deep("x", 0)
