"""Every CSV export neutralises cells a spreadsheet would run as formulas (issue 12,
item 6): the progress learner list, certification's list and the list in its zip."""
from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

from services.certification import tables as certification_tables
from services.progress.app import create_app as create_progress_app
from services.progress.service import SERVICE as PROGRESS
from shared import db, xapi
from shared.consumer import ProjectionRunner
from shared.csv_export import csv_text, safe_cell
from tests.support import statements as s
from tests.support.flows import AUTH

# As the tester's campaign sent them: each would run in Excel or LibreOffice verbatim.
HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "-1+1", "@SUM(1+1)", '=HYPERLINK("http://evil.test","x")',
           "\t=1+1", "\r=1+1"]
COHORT = "55555555-5555-4555-8555-555555555555"
ISSUED = datetime(2026, 11, 2, tzinfo=UTC)


def _neutralised(value: str) -> str:
    return "'" + value


def test_the_shared_writer_quotes_formula_cells_and_nothing_else():
    assert [safe_cell(v) for v in HOSTILE] == [_neutralised(v) for v in HOSTILE]
    assert [safe_cell(v) for v in ("Ada Lovelace", "", None, -1, 0.85, True, "a=b")] == [
        "Ada Lovelace", "", "", "-1", "0.85", "True", "a=b"]
    rows = list(csv.reader(io.StringIO(csv_text(("a", "b"), [{"a": "=1", "b": 'x,"y"\n'}, {"b": "@x"}]))))
    assert rows == [["a", "b"], ["'=1", 'x,"y"\n'], ["", "'@x"]]


def test_progress_learner_list_neutralises_names_and_organisations(deployment):
    settings = deployment.settings("progress")
    engine = db.create_engine(settings.database_url)
    try:
        runner = ProjectionRunner(settings, engine, PROGRESS.projection(settings), PROGRESS.offsets,
                                  PROGRESS.processed)
        facts = []
        for n, hostile in enumerate(HOSTILE):
            event, statement = s.enrolled(n, s.new_id(), COHORT, ISSUED, ISSUED + timedelta(days=10))
            statement["actor"]["name"] = hostile
            statement["context"]["extensions"][xapi.EXT_ORGANISATION] = hostile
            facts.append((event, statement))
        runner.process(s.as_records(facts))
        client = create_progress_app(settings).test_client()
        response = client.get(f"/cohorts/{COHORT}/learners.csv", headers=AUTH)
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.text)))
    finally:
        engine.dispose()
    assert sorted(r["name"] for r in rows) == sorted(_neutralised(v) for v in HOSTILE)
    assert sorted(r["organisation"] for r in rows) == sorted(_neutralised(v) for v in HOSTILE)


def test_certification_exports_neutralise_names_and_organisations(deployment):
    app = deployment.app("certification")
    with app.config["LEARNSTREAM_ENGINE"].begin() as conn:
        conn.execute(certification_tables.cohorts.insert().values(id=COHORT, programme_id="p", name="=c",
                                                                  agency=None))
        for n, hostile in enumerate(HOSTILE):
            conn.execute(certification_tables.certificates.insert().values(
                id=str(uuid.uuid4()), number=f"DSK-2026-{n:06d}", verification_code=uuid.uuid4().hex,
                programme_id="p", programme_code="DSK", programme_title=hostile, programme_activity={},
                cohort_id=COHORT, cohort_name=hostile, registration=str(uuid.uuid4()), learner_key=f"k{n}",
                actor={}, learner_name=hostile, organisation=hostile, issue_no=1, issued_at=ISSUED,
                issued_by="test"))
    client = app.test_client()
    listed = client.get(f"/cohorts/{COHORT}/certificates.csv", headers=AUTH)
    assert listed.status_code == 200
    archive = client.get(f"/cohorts/{COHORT}/certificates.zip", headers=AUTH)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.data)) as zipped:
        zipped_text = zipped.read("certificates.csv").decode("utf-8-sig")
    for text in (listed.text, zipped_text):
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == len(HOSTILE)
        for column in ("learner_name", "organisation", "programme_title", "cohort_name"):
            assert sorted(r[column] for r in rows) == sorted(_neutralised(v) for v in HOSTILE), column
