"""The LRS inside learnstream: its statements go to learnstream.lrs.v1 through the outbox,
and the statements other services publish become part of its record."""
from __future__ import annotations

import orjson
import pytest

from shared import events, xapi
from tests.support.flows import define_cohort, eventually, import_csv, learners_csv, read_topic
from tests.support.lrs import LrsClient, agent, statement

pytestmark = pytest.mark.integration


def test_post_reaches_the_topic_keyed_by_learner_and_get_sees_it_at_once(deployment, kafka_bootstrap):
    lrs = LrsClient(deployment.app("progress"))
    posted = lrs.post([statement(1), statement(2)])
    assert posted.status_code == 200
    # Read-your-writes: the GET right after the POST sees both, before any relay ran.
    assert {s["id"] for s in lrs.get().json["statements"]} == set(posted.json)
    deployment.start_worker("progress")
    topic = deployment.settings("progress").topic("lrs")
    records = read_topic(kafka_bootstrap, topic, expected=2)
    assert {orjson.loads(r.value)["id"] for r in records} == set(posted.json)
    for record in records:
        body = orjson.loads(record.value)
        assert record.key.decode() == xapi.learner_key(body["actor"])
        assert events.routing(record.headers) == ("progress", events.EventType.LRS_STATEMENT)
        # The LRS stores statements as clients sent them (id not first): ce_id still is the id.
        assert events.header(record.headers, events.CE_ID) == body["id"]
        assert events.header(record.headers, events.CE_SUBJECT) == record.key.decode()
        assert body["authority"] == lrs.authority and body["stored"]


def test_statements_of_other_services_are_in_the_lrs(deployment):
    enrollment = deployment.app("enrollment").test_client()
    _, cohort = define_cohort(enrollment, code="LRS1")
    import_csv(enrollment, cohort["id"], learners_csv(3, domain="lrs.example"))
    deployment.start_worker("enrollment")
    deployment.start_worker("progress")
    lrs = LrsClient(deployment.app("progress"))
    learner = agent(0) | {"mbox": "mailto:learner0@lrs.example"}
    found = eventually(lambda: lrs.get(query={"agent": orjson.dumps(learner).decode()}).json["statements"],
                       message="enrolment statement in the LRS")
    assert found[0]["verb"]["id"] == xapi.REGISTERED.id
    # The other two learners' statements come from other partitions: wait for them too.
    registered = eventually(lambda: (s := lrs.get(query={"verb": xapi.REGISTERED.id}).json["statements"])
                            and len(s) == 3 and s)
    assert {s["actor"]["mbox"] for s in registered} == {f"mailto:learner{i}@lrs.example" for i in range(3)}
