"""Bulk exports of a cohort's certificates: a CSV list, and a zip of PDFs with the list.

Both stream: a cohort of thousands is written out as it is read and rendered, never
held in memory whole.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator

from services.certification import pdf
from shared.csv_export import csv_chunks

CSV_COLUMNS = ("number", "status", "learner_name", "organisation", "programme_code", "programme_title",
               "cohort_name", "issued_on", "revoked_on", "verification_url", "registration")


def _csv_row(cert: dict) -> dict:
    return dict(cert, issued_on=cert["issued_at"].date().isoformat(),
                revoked_on=cert["revoked_at"].date().isoformat() if cert["revoked_at"] else None)


def csv_lines(certs: Iterable[dict], headers: list[str] | None = None) -> Iterator[str]:
    """`headers`: the header row in the reader's language (shared.i18n.csv_headers)."""
    return csv_chunks(CSV_COLUMNS, map(_csv_row, certs), headers)


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream: zipfile then writes sizes after each member."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def zip_stream(certs: Iterable[dict], headers: list[str] | None = None) -> Iterator[bytes]:
    """certificates/<number>.pdf for each certificate, then certificates.csv."""
    sink = _Sink()
    listed = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:  # PDFs are compressed already
        for cert in certs:
            archive.writestr(f"certificates/{cert['number']}.pdf", pdf.render(cert, cert["verification_url"]))
            listed.append(cert)
            yield sink.drain()
        archive.writestr("certificates.csv", "".join(csv_lines(listed, headers)).encode("utf-8-sig"))
    yield sink.drain()
