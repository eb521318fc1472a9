"""The catalog a cohort or agency filter is decided with, and the facts of a statement.

An LMS statement on the LRS topic rarely names its cohort: it has a registration (the
enrolment id), or only the learner. So the forwarding worker projects the enrollment
topic's cohorts and enrolments (shared.catalog reads them) into two small tables, and
`facts` resolves each statement's cohorts and agencies from them:

1. a cohort activity in the statement's `grouping` (what learnstream's own services
   write) names the cohort and its agency itself;
2. else its registration names the enrolment, and so the cohort;
3. else (no registration) the statement belongs to every cohort the learner is enrolled in.

The forwarder waits for this projection to have read every enrolment on the bus before
it judges a batch by cohort or agency, and for a statement of no known enrolment a while
longer (services.forwarding.forwarder), so a learner's statement is not judged before
their enrolment.
"""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.forwarding import tables as t
from services.forwarding.domain import Facts, statement_activities
from shared import catalog, db, xapi
from shared.account_tables import handlers as account_handlers
from shared.config import Settings
from shared.consumer import Projection
from shared.events import EventType


def on_cohort_defined(conn: Connection, statements: list[dict]) -> None:
    rows = [{"id": c.id, "agency": c.agency} for c in (catalog.cohort(s["object"]) for s in statements)]
    db.upsert(conn, t.cohorts, catalog.latest_by_id(rows), ["id"])


def on_enrolment(conn: Connection, statements: list[dict]) -> None:
    """Registered and withdrawn alike: a withdrawn learner's statements still belong to
    the cohort they were in."""
    rows = {}
    for e in map(catalog.enrolment, statements):
        rows[e.registration] = {"registration": e.registration, "learner_key": e.learner_key,
                                "cohort_id": e.cohort and e.cohort.id, "agency": e.cohort and e.cohort.agency}
    db.upsert(conn, t.enrolments, list(rows.values()), ["registration"])


HANDLERS = {
    EventType.COHORT_DEFINED: on_cohort_defined,
    EventType.LEARNER_ENROLLED: on_enrolment,
    EventType.LEARNER_WITHDREW: on_enrolment,
    **account_handlers(t.accounts),
}


def projection(settings: Settings) -> Projection:
    return Projection(topics=[settings.topic("enrollment"), settings.topic("accounts")], handlers=HANDLERS,
                      tables=t.READ_MODELS)


def _cohort_in_grouping(statement: dict) -> tuple[str, str | None] | None:
    grouping = (statement.get("context") or {}).get("contextActivities", {}).get("grouping") or []
    for activity in grouping if isinstance(grouping, list) else [grouping]:
        details = ((activity or {}).get("definition") or {}).get("extensions", {}).get(xapi.EXT_COHORT)
        if isinstance(details, dict) and details.get("id"):
            return str(details["id"]), details.get("agency")
    return None


def facts(conn: Connection | None, items: list[tuple[str | None, dict]]) -> list[Facts]:
    """Facts of each (event type, statement). `conn` None: the filter needs no cohorts."""
    registrations, learners = set(), set()
    named = []
    for _, s in items:
        in_grouping = _cohort_in_grouping(s)
        named.append(in_grouping)
        if conn is not None and in_grouping is None:
            registration = xapi.registration(s)
            if registration:
                registrations.add(str(registration).lower())
            else:
                learners.add(xapi.learner_key(s["actor"]))
    by_registration: dict[str, tuple[str | None, str | None]] = {}
    by_learner: dict[str, set[tuple[str | None, str | None]]] = defaultdict(set)
    agencies: dict[str, str | None] = {}
    if conn is not None:
        e = t.enrolments
        for chunk in db.chunks(sorted(registrations)):
            for row in conn.execute(sa.select(e).where(sa.func.lower(e.c.registration).in_(chunk))):
                by_registration[row.registration.lower()] = (row.cohort_id, row.agency)
        for chunk in db.chunks(sorted(learners)):
            for row in conn.execute(sa.select(e).where(e.c.learner_key.in_(chunk))):
                by_learner[row.learner_key].add((row.cohort_id, row.agency))
        cohort_ids = sorted({c for pair in [*by_registration.values(), *[p for v in by_learner.values() for p in v]]
                             for c in pair[:1] if c})
        for chunk in db.chunks(cohort_ids):
            agencies.update(conn.execute(sa.select(t.cohorts.c.id, t.cohorts.c.agency)
                                         .where(t.cohorts.c.id.in_(chunk))).all())
    result = []
    for (event_type, s), in_grouping in zip(items, named, strict=True):
        if in_grouping is not None:
            pairs = {in_grouping}
        elif conn is None:
            pairs = set()
        elif xapi.registration(s):
            found = by_registration.get(str(xapi.registration(s)).lower())
            pairs = {found} if found else set()
        else:
            pairs = by_learner.get(xapi.learner_key(s["actor"]), set())
        cohorts = frozenset(c for c, _ in pairs if c)
        # The enrolment's agency, else the cohort's as defined (a cohort's agency may be set later).
        found_agencies = frozenset(a for c, a in pairs for a in [a or agencies.get(c)] if a)
        result.append(Facts(event_type, xapi.verb_id(s), statement_activities(s), cohorts, found_agencies))
    return result
