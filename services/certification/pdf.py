"""The printable certificate: one A4 landscape page drawn with ReportLab, with a QR code
(ReportLab's own QR widget) pointing at the public verification page. Its words are in
the request's language (shared.i18n); outside a request, English."""
from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from pathlib import Path

import reportlab
from flask_babel import gettext as _
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from shared.vocabulary import REVOKED

INK = HexColor("#1f2a44")
ACCENT = HexColor("#b08d57")
MUTED = HexColor("#5a6275")

# DejaVu covers most scripts learners' names are written in; ReportLab's bundled Vera
# (Latin only) is the fallback on machines without it. Either is embedded in the PDF.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_VERA = Path(reportlab.__file__).parent / "fonts"
_FONT_CANDIDATES = [
    (_DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"),
    (_VERA / "Vera.ttf", _VERA / "VeraBd.ttf"),
]


@cache
def _fonts() -> tuple[str, str]:
    for regular, bold in _FONT_CANDIDATES:
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont("CertSans", str(regular)))
            pdfmetrics.registerFont(TTFont("CertSans-Bold", str(bold)))
            return "CertSans", "CertSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _fitted(c: canvas.Canvas, text: str, font: str, size: float, max_width: float) -> float:
    """The largest size not above `size` at which the text fits the width."""
    width = pdfmetrics.stringWidth(text, font, size)
    return size if width <= max_width else max(8.0, size * max_width / width)


def _centred(c: canvas.Canvas, text: str, y: float, font: str, size: float, colour=INK, max_width: float = 700):
    size = _fitted(c, text, font, size, max_width)
    c.setFont(font, size)
    c.setFillColor(colour)
    c.drawCentredString(A4[1] / 2, y, text)


def issue_date(moment: datetime) -> str:
    """"5 December 2026" / "ngày 5 tháng 12 năm 2026": the catalog orders day, month and year."""
    return _("%(day)s %(month_name)s %(year)s", day=moment.day, month=moment.month,
             month_name=moment.strftime("%B"), year=moment.year)


def render(cert: dict, verify_url: str) -> bytes:
    """`cert`: number, learner_name, organisation, programme_title, issued_at, status."""
    regular, bold = _fonts()
    width, height = landscape(A4)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(width, height), pageCompression=1)
    c.setTitle(_("Certificate %(number)s", number=cert["number"]))
    c.setAuthor("learnstream")
    c.setSubject(cert["programme_title"])

    c.setStrokeColor(ACCENT)
    c.setLineWidth(3)
    c.rect(24, 24, width - 48, height - 48)
    c.setLineWidth(0.8)
    c.rect(32, 32, width - 64, height - 64)

    _centred(c, _("CERTIFICATE OF COMPLETION"), height - 110, bold, 30)
    c.setStrokeColor(ACCENT)
    c.setLineWidth(1.2)
    c.line(width / 2 - 120, height - 126, width / 2 + 120, height - 126)
    _centred(c, _("This certifies that"), height - 170, regular, 15, MUTED)
    _centred(c, cert["learner_name"], height - 215, bold, 34)
    if cert.get("organisation"):
        _centred(c, cert["organisation"], height - 243, regular, 14, MUTED)
    _centred(c, _("has completed the programme"), height - 285, regular, 15, MUTED)
    _centred(c, cert["programme_title"], height - 325, bold, 24)
    _centred(c, _("Issued on %(date)s", date=issue_date(cert["issued_at"])), height - 365, regular, 14)

    qr_size = 118
    widget = QrCodeWidget(verify_url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0])
    drawing.add(widget)
    qr_x, qr_y = width - 60 - qr_size, 52
    renderPDF.draw(drawing, c, qr_x, qr_y)

    c.setFillColor(INK)
    c.setFont(bold, 12)
    c.drawString(64, 112, _("Certificate No. %(number)s", number=cert["number"]))
    c.setFont(regular, 10)
    c.setFillColor(MUTED)
    c.drawString(64, 94, _("Verify this certificate by scanning the code or at:"))
    c.setFillColor(INK)
    c.setFont(regular, _fitted(c, verify_url, regular, 10, qr_x - 84))
    c.drawString(64, 80, verify_url)
    c.linkURL(verify_url, (qr_x, qr_y, qr_x + qr_size, qr_y + qr_size), relative=0)
    if cert.get("status") == REVOKED:
        c.saveState()
        c.setFillColor(HexColor("#c0392b"))
        c.setFont(bold, 90)
        c.translate(width / 2, height / 2)
        c.rotate(25)
        c.setFillAlpha(0.35)
        c.drawCentredString(0, 0, _("REVOKED"))
        c.restoreState()
    c.showPage()
    c.save()
    return out.getvalue()
