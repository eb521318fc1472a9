from datetime import UTC, datetime

import pytest

from services.enrollment.commands import parse_learner_csv
from services.enrollment.domain import ENROLLED, WITHDRAWN, Cohort, Learner, Programme, deadline_for, enrol
from shared.errors import Conflict, DomainError

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def programme(**overrides):
    fields = dict(id="p1", code="DS1", title="Digital skills", required_modules=("https://x.test/m1", "https://x.test/m2"),
                  final_test="https://x.test/test", window_days=10, activity_id="https://x.test/p/DS1")
    fields.update(overrides)
    return Programme(**fields)


def cohort(**overrides):
    fields = dict(id="c1", programme_id="p1", name="Wave 1", agency="Tax office", province="North", wave=1,
                  accounts_issued_at=T0, activity_id="https://x.test/c/c1")
    fields.update(overrides)
    return Cohort(**fields)


def test_deadline_is_accounts_issued_plus_window():
    assert deadline_for(programme(), cohort()) == datetime(2026, 11, 12, tzinfo=UTC)
    assert deadline_for(programme(window_days=3), cohort()) == datetime(2026, 11, 5, tzinfo=UTC)


@pytest.mark.parametrize("overrides, field", [
    ({"required_modules": ()}, "required_modules"),
    ({"required_modules": ("https://x.test/m1", "https://x.test/m1")}, "required_modules"),
    ({"final_test": "https://x.test/m1"}, "final_test"),
    ({"window_days": 0}, "window_days"),
])
def test_programme_rules(overrides, field):
    with pytest.raises(DomainError) as caught:
        programme(**overrides)
    assert caught.value.field == field


def test_enrol_sets_deadline_and_rejects_foreign_cohort():
    learner = Learner(name="Ana", email="ana@example.org")
    enrolment = enrol("e1", programme(), cohort(), learner, now=T0)
    assert enrolment.status == ENROLLED and enrolment.deadline == datetime(2026, 11, 12, tzinfo=UTC)
    with pytest.raises(DomainError):
        enrol("e2", programme(), cohort(programme_id="other"), learner, now=T0)


def test_withdraw_once():
    enrolment = enrol("e1", programme(), cohort(), Learner(name="Ana", email="ana@example.org"), now=T0)
    withdrawn = enrolment.withdraw("moved", now=T0)
    assert withdrawn.status == WITHDRAWN and withdrawn.withdrawal_reason == "moved"
    with pytest.raises(Conflict):
        withdrawn.withdraw("again", now=T0)


def test_learner_needs_an_identifier():
    with pytest.raises(DomainError):
        Learner(name="No id")


def test_csv_parser_reports_bad_rows_by_line_and_keeps_good_ones():
    text = ("name,email,organisation\n"
            "Ana,ana@example.org,Tax\n"
            "Bo,not-an-email,Tax\n"
            ",carl@example.org,Tax\n"
            "Ana again,ANA@example.org,Tax\n"
            "Dee,dee@example.org,Tax,extra\n"
            "Eve,eve@example.org,\n")
    learners, rejected = parse_learner_csv(text)
    assert [line for line, _ in learners] == [2, 7]
    assert learners[1][1].organisation is None
    by_row = {r["row"]: r["errors"] for r in rejected}
    assert set(by_row) == {3, 4, 5, 6}
    assert "email" in by_row[3]
    assert "name" in by_row[4]
    assert "same learner as row 2" in by_row[5]["_row"][0]
    assert "more fields" in by_row[6]["_row"][0]


@pytest.mark.parametrize("header, problem", [
    ("email,organisation", "'name'"),
    ("name,organisation", "'email'"),
    ("name,email,shoe_size", "shoe_size"),
])
def test_csv_with_unusable_header_is_refused_whole(header, problem):
    with pytest.raises(DomainError) as caught:
        parse_learner_csv(header + "\nAna,ana@example.org\n")
    assert problem in caught.value.message and caught.value.field == "file"
