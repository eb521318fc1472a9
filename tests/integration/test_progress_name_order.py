"""The learner list and its CSV in Vietnamese name order (shared.name_order), paged by
the database from the key each row keeps: given name, then family and middle names."""
from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from services.progress.app import create_app
from services.progress.service import SERVICE as PROGRESS
from shared import db
from shared.consumer import ProjectionRunner
from shared.name_order import sort_key
from shared.service import load
from tests.integration.test_progress_api import DEADLINE, ISSUED, NORTH
from tests.support import statements as s
from tests.support.flows import AUTH

NAMES = ["Bùi Gia Yến", "Bùi Gia Ánh", "Đỗ Văn An", "Nguyễn Thị Ân", "Trần Minh Đức", "Lê Dung", "Phạm Thị Mạ",
         "Phạm Thị Ma"]
# a < ă < â: Ánh (a, sắc) comes before Ân (â); d < đ; a tone only after the letters.
IN_ORDER = ["Đỗ Văn An", "Bùi Gia Ánh", "Nguyễn Thị Ân", "Lê Dung", "Trần Minh Đức", "Phạm Thị Ma", "Phạm Thị Mạ",
            "Bùi Gia Yến"]


def test_the_learner_list_and_csv_sort_by_given_name_in_vietnamese_order(deployment):
    settings = deployment.settings("progress")
    engine = db.create_engine(settings.database_url)
    runner = ProjectionRunner(settings, engine, PROGRESS.projection(settings), PROGRESS.offsets, PROGRESS.processed)
    facts = []
    for n, name in enumerate(NAMES):
        kind, statement = s.enrolled(n, s.new_id(), NORTH, ISSUED, DEADLINE)
        statement["actor"]["name"] = name
        facts.append((kind, statement))
    runner.process(s.as_records(facts))
    engine.dispose()
    client = create_app(settings).test_client()

    def page(**query):
        listed = client.get(f"/cohorts/{NORTH}/learners", query_string=query, headers=AUTH).json
        return [item["name"] for item in listed["items"]]

    assert page() == IN_ORDER
    assert page(order="desc") == IN_ORDER[::-1]
    assert page(page=2, page_size=3) == IN_ORDER[3:6]  # paged by the database in the same order
    rows = list(csv.DictReader(io.StringIO(client.get(f"/cohorts/{NORTH}/learners.csv", headers=AUTH).text)))
    assert [row["name"] for row in rows] == IN_ORDER
    assert "name_key" not in client.get(f"/cohorts/{NORTH}/learners", headers=AUTH).json["items"][0]


def test_rows_stored_before_the_key_get_theirs_from_the_migration(deployment):
    from tests.support.migrations import own_database

    url = own_database(deployment, "progress_name_key")
    spec = load("progress")
    db.migrate(url, spec.migrations, revision="0007")
    engine = db.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO learner_enrolments (registration, cohort_id, programme_id, learner_key, name, status) "
                "VALUES (:r, 'c', 'p', :r, :name, 'enrolled')"), [{"r": f"r{n}", "name": name}
                                                                  for n, name in enumerate([*NAMES, None])])
        db.migrate(url, spec.migrations)
        with engine.connect() as conn:
            keys = dict(conn.execute(sa.text("SELECT name, name_key FROM learner_enrolments")).all())
        assert {name: bytes(key) for name, key in keys.items()} == {name: sort_key(name) for name in [*NAMES, None]}
    finally:
        engine.dispose()
        db.drop_database(url)
