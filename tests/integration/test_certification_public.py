"""Certification's public side: the address printed on certificates follows the
service's own port (issue 12, item 7), and /verify/<code> answers HTML or JSON by
Accept, found or not (item 8)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.certification import tables as certification_tables
from shared.config import Settings
from shared.service import load
from tests.support.flows import AUTH

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def _certificate(app) -> dict:
    row = {"id": str(uuid.uuid4()), "number": "DSK-2026-000001", "verification_code": uuid.uuid4().hex}
    with app.config["LEARNSTREAM_ENGINE"].begin() as conn:
        conn.execute(certification_tables.certificates.insert().values(
            **row, programme_id="p", programme_code="DSK", programme_title="Digital skills",
            programme_activity={}, registration=str(uuid.uuid4()), learner_key="k", actor={},
            learner_name="Ada Lovelace", issue_no=1, issued_at=datetime(2026, 11, 2, tzinfo=UTC),
            issued_by="test"))
    return row


def test_the_public_address_follows_the_port_unless_set():
    assert Settings.from_env("certification", {"CERTIFICATION_PORT": "9104"}).public_url == "http://127.0.0.1:9104"
    assert Settings.from_env("certification", {}).public_url == "http://127.0.0.1:8004"
    assert Settings.from_env("certification", {"CERTIFICATION_PORT": "9104",
                                               "CERTIFICATION_PUBLIC_URL": "https://verify.example.gov/"}
                             ).public_url == "https://verify.example.gov"


def test_certificates_link_to_the_port_the_service_runs_on(deployment):
    app = load("certification").create_app(deployment.settings("certification", port=9104))
    row = _certificate(app)
    shown = app.test_client().get(f"/certificates/{row['id']}", headers=AUTH).json
    assert shown["verification_url"] == f"http://127.0.0.1:9104/verify/{row['verification_code']}"
    app = load("certification").create_app(deployment.settings(
        "certification", port=9104, configured_public_url="https://verify.example.gov"))
    shown = app.test_client().get(f"/certificates/{row['id']}", headers=AUTH).json
    assert shown["verification_url"] == f"https://verify.example.gov/verify/{row['verification_code']}"


def test_verify_answers_json_or_html_by_accept_found_or_not(deployment):
    app = deployment.app("certification")
    row = _certificate(app)
    client = app.test_client()
    for code, status, standing in ((row["verification_code"], 200, "valid"), ("not-a-real-code", 404, "unknown")):
        as_json = client.get(f"/verify/{code}", headers={"Accept": "application/json"})
        assert (as_json.status_code, as_json.mimetype) == (status, "application/json")
        assert as_json.json["status"] == standing
        assert as_json.json == client.get(f"/verify/{code}.json").json
        assert as_json.headers["Vary"] == "Accept" and as_json.headers["Cache-Control"] == "no-store"
        for accept in (BROWSER, None, "*/*"):
            page = client.get(f"/verify/{code}", headers={"Accept": accept} if accept else {})
            assert (page.status_code, page.mimetype) == (status, "text/html")
            assert f'data-status="{standing}"' in page.text
    assert client.get(f"/verify/{row['verification_code']}", headers={"Accept": "application/json"}).json[
        "number"] == row["number"]
    documented = client.get("/openapi.json").json["paths"]["/verify/{code}"]["get"]["responses"]
    for status in ("200", "404"):
        assert set(documented[status]["content"]) == {"text/html", "application/json"}
        assert documented[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Verification"}


def test_the_verification_page_and_the_pdf_in_the_readers_language(deployment):
    import pypdfium2 as pdfium

    app = deployment.app("certification")
    row = _certificate(app)
    client = app.test_client()
    vi = {"Accept-Language": "vi-VN,vi;q=0.9"}
    page = client.get(f"/verify/{row['verification_code']}", headers=vi)
    assert 'lang="vi"' in page.text and "Chứng nhận này hợp lệ." in page.text and "Họ và tên" in page.text
    assert page.headers["Vary"] == "Accept, Accept-Language"
    assert "This certificate is valid." in client.get(f"/verify/{row['verification_code']}").text

    def text(headers):
        data = client.get(f"/certificates/{row['id']}.pdf", headers={**AUTH, **headers}).data
        return pdfium.PdfDocument(data)[0].get_textpage().get_text_range()

    assert "CHỨNG NHẬN HOÀN THÀNH" in text(vi) and "Cấp ngày 2 tháng 11 năm 2026" in text(vi)
    assert "CERTIFICATE OF COMPLETION" in text({}) and "Issued on 2 November 2026" in text({})
