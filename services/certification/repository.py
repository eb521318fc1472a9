"""Loading certification rows as domain objects (the only module that maps rows)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.certification import tables as t
from services.certification.domain import Certificate, Enrolment, Rules
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
