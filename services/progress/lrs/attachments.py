"""Statement attachments carried in multipart/mixed bodies (xAPI 1.0.3 §4.1.11, 2.0 §5.4).

A request's first part holds the statement(s); each further part is one attachment's
raw content, named by its X-Experience-API-Hash. Every attachment a statement declares
without a fileUrl needs its part; every part needs a declaration; every part's content
must hash to what it claims.
"""
from __future__ import annotations

import hashlib
import secrets

from werkzeug.http import parse_options_header

from services.progress.lrs.validation import Invalid

_ALGORITHMS = {64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512, 56: hashlib.sha224}


def _headers(raw: bytes) -> dict[str, str]:
    headers = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise Invalid("multipart: malformed part header")
        headers[name.strip().lower()] = value.strip()
    return headers


def parse_multipart(content_type: str, body: bytes) -> tuple[bytes, dict[str, tuple[str, bytes]]]:
    """Split a multipart/mixed body into the statement part and {sha2: (content type, bytes)}."""
    _, options = parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise Invalid("multipart/mixed needs a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise Invalid("multipart: the body is not framed by its boundary")
    parts = []
    for section in sections[1:-1]:
        if section.startswith(b"\r\n"):
            section = section[2:]
        if section.endswith(b"\r\n"):
            section = section[:-2]
        head, sep, content = section.partition(b"\r\n\r\n")
        if not sep:
            raise Invalid("multipart: a part has no header/body separator")
        parts.append((_headers(head), content))
    first_headers, statement_body = parts[0]
    if first_headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Invalid("multipart: the first part must be the application/json statement(s)")
    found: dict[str, tuple[str, bytes]] = {}
    for headers, content in parts[1:]:
        sha2 = headers.get("x-experience-api-hash")
        if not sha2:
            raise Invalid("multipart: an attachment part lacks X-Experience-API-Hash")
        if headers.get("content-transfer-encoding", "binary").lower() != "binary":
            raise Invalid("multipart: attachment parts must use Content-Transfer-Encoding: binary")
        algorithm = _ALGORITHMS.get(len(sha2))
        if algorithm is None or algorithm(content).hexdigest() != sha2.lower():
            raise Invalid("multipart: an attachment's content does not match its X-Experience-API-Hash")
        found[sha2.lower()] = (headers.get("content-type", "application/octet-stream"), content)
    return statement_body, found


def declared(statements: list[dict]) -> list[dict]:
    found = []
    for statement in statements:
        found += statement.get("attachments") or []
        obj = statement.get("object")
        if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
            found += obj.get("attachments") or []
    return found


def check_parts(statements: list[dict], parts: dict[str, tuple[str, bytes]]) -> None:
    wanted = set()
    for attachment in declared(statements):
        if "fileUrl" in attachment and attachment["sha2"].lower() not in parts:
            continue
        sha2 = attachment["sha2"].lower()
        if sha2 not in parts:
            raise Invalid(f"attachment {sha2} is declared without a fileUrl but its content was not sent")
        wanted.add(sha2)
    extra = set(parts) - wanted
    if extra:
        raise Invalid("multipart: a part matches no attachment of the statement(s)")


def build_multipart(statement_json: bytes, files) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    chunks = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), statement_json, b"\r\n"]
    for row in files:
        chunks += [f"--{boundary}\r\nContent-Type: {row.content_type}\r\nContent-Transfer-Encoding: binary\r\n"
                   f"X-Experience-API-Hash: {row.sha2}\r\n\r\n".encode(), bytes(row.content), b"\r\n"]
    chunks.append(f"--{boundary}--".encode())
    return b"".join(chunks), f'multipart/mixed; boundary="{boundary}"'
