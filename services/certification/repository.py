"""Loading and storing certification's state (the only module that maps rows).

`CertificationRepository` is what the issuance policy and the operators' commands see
through their unit of work; the module's functions also serve the read queries."""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.certification import tables as t
from services.certification.domain import Achievement, Certificate, Enrolment, Rules
from shared import db
from shared.errors import NotFound


def enrolment_from_row(row) -> Enrolment:
    return Enrolment(registration=row.registration, required_modules=tuple(row.required_modules),
                     final_test=row.final_test, deadline=row.deadline, withdrawn_at=row.withdrawn_at)


def certificate_from_row(row) -> Certificate:
    return Certificate(id=row.id, programme_id=row.programme_id, learner_key=row.learner_key,
                       issue_no=row.issue_no, issued_at=row.issued_at, number=row.number,
                       issued_by=row.issued_by, qualified_at=row.qualified_at, revoked_at=row.revoked_at,
                       revoked_by=row.revoked_by, revocation_reason=row.revocation_reason)


def rules_for(conn: Connection, programme_ids: set[str]) -> dict[str, Rules]:
    rows = conn.execute(sa.select(t.programme_rules).where(t.programme_rules.c.programme_id.in_(programme_ids)))
    return {row.programme_id: Rules(grace_days=row.grace_days) for row in rows}


def get_certificate_row(conn: Connection, certificate_id: str):
    row = conn.execute(sa.select(t.certificates).where(t.certificates.c.id == certificate_id)).first()
    if row is None:
        raise NotFound(f"no certificate {certificate_id}")
    return row


def issues_of(conn: Connection, programme_id: str, learner_key: str) -> list:
    c = t.certificates
    return conn.execute(sa.select(c).where(c.c.programme_id == programme_id, c.c.learner_key == learner_key)
                        .order_by(c.c.issue_no)).all()


class CertificationRepository:
    """Certification's state inside one unit of work: the learner view the projection
    keeps (enrolments, achievements, standings), the certificates and their number
    series, and the programmes' rules. Rows come back as rows (attribute access); a
    uniqueness the database enforces is reported as `Conflict`."""

    def __init__(self, conn: Connection):
        self.conn = conn

    # --- the learner view -------------------------------------------------------------------

    def enrolments_of(self, learner_keys: list[str]) -> list:
        e = t.learner_enrolments
        return self.conn.execute(sa.select(e).where(e.c.learner_key.in_(learner_keys))).all()

    def enrolment(self, registration: str):
        e = t.learner_enrolments
        return self.conn.execute(sa.select(e).where(e.c.registration == registration)).first()

    def achievements_of(self, learner_keys: list[str]) -> dict[str, list[Achievement]]:
        facts: dict[str, list[Achievement]] = defaultdict(list)
        a = t.achievements
        for row in self.conn.execute(sa.select(a).where(a.c.learner_key.in_(learner_keys))):
            facts[row.learner_key].append(Achievement(row.activity_id, row.kind, row.achieved_at, row.statement_id))
        return facts

    def set_standings(self, changed: list[dict]) -> None:
        """Each {registration, standing, qualified_at}."""
        db.update_many(self.conn, t.learner_enrolments, "registration", [
            {"registration": c["registration"], "standing": c["standing"], "qualified_at": c["qualified_at"]}
            for c in changed])

    def learners_with_standing(self, programme_id: str, standings: list[str]) -> list[str]:
        e = t.learner_enrolments
        return list(self.conn.scalars(sa.select(e.c.learner_key).where(
            e.c.programme_id == programme_id, e.c.standing.in_(standings))))

    # --- rules --------------------------------------------------------------------------------

    def rules_for(self, programme_ids: set[str]) -> dict[str, Rules]:
        return rules_for(self.conn, programme_ids)

    def save_rules(self, programme_id: str, rules: Rules, updated_at, updated_by: str) -> None:
        db.upsert(self.conn, t.programme_rules, [{"programme_id": programme_id, "grace_days": rules.grace_days,
                                                  "updated_at": updated_at, "updated_by": updated_by}],
                  ["programme_id"])

    # --- certificates -------------------------------------------------------------------------

    def certified(self, learner_keys: list[str]) -> set[tuple[str, str]]:
        """(programme, learner) pairs that hold a certificate of any issue."""
        c = t.certificates
        found = self.conn.execute(sa.select(c.c.programme_id, c.c.learner_key).where(c.c.learner_key.in_(learner_keys)))
        return {tuple(row) for row in found}

    def add_certificates(self, rows: list[dict]) -> set[str]:
        """Insert those not issued meanwhile (ON CONFLICT DO NOTHING on programme, learner,
        issue number): the ids really inserted."""
        return set(db.insert_returning_new_ids(self.conn, t.certificates, rows,
                                               ["programme_id", "learner_key", "issue_no"]))

    def add_certificate(self, row: dict) -> None:
        with db.unique_or_conflict("the certificate was re-issued concurrently"):
            self.conn.execute(t.certificates.insert().values(row))

    def set_numbers(self, numbers: dict[str, str]) -> None:
        """certificate id -> number."""
        db.update_many(self.conn, t.certificates, "id", [{"id": i, "number": n} for i, n in numbers.items()])

    def allocate_numbers(self, programme_code: str, year: int, count: int) -> list[int]:
        """The next `count` numbers of a series. The UPDATE takes the row lock (PostgreSQL)
        or runs under SQLite's single writer, so concurrent issuers never share a number."""
        seq = t.certificate_sequences
        where = (seq.c.programme_code == programme_code, seq.c.year == year)
        db.insert_ignoring_duplicates(self.conn, seq, [{"programme_code": programme_code, "year": year,
                                                        "last_number": 0}], ["programme_code", "year"])
        self.conn.execute(seq.update().where(*where).values(last_number=seq.c.last_number + count))
        last = self.conn.scalar(sa.select(seq.c.last_number).where(*where))
        return list(range(last - count + 1, last + 1))

    def first_issue(self, programme_id: str, learner_key: str):
        """The rule's own certificate (issue 1) of a learner in a programme, if any."""
        c = t.certificates
        return self.conn.execute(sa.select(c).where(c.c.programme_id == programme_id, c.c.learner_key == learner_key,
                                                    c.c.issue_no == 1)).first()

    def certificate(self, certificate_id: str):
        return get_certificate_row(self.conn, certificate_id)

    def issues_of(self, programme_id: str, learner_key: str) -> list:
        return issues_of(self.conn, programme_id, learner_key)

    def revoke(self, certificate_id: str, at, by: str, reason: str) -> bool:
        """Revoke unless already revoked (then False: a concurrent revocation won)."""
        c = t.certificates
        return self.conn.execute(c.update().where(c.c.id == certificate_id, c.c.revoked_at.is_(None))
                                 .values(revoked_at=at, revoked_by=by, revocation_reason=reason)).rowcount == 1
