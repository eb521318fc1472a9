"""Signed statements (xAPI 1.0.3 §2.6, 2.0 §5.5): a JWS over the statement, attached.

The LRS checks the JWS is well formed, uses RS256/384/512, and that its payload is the
statement as sent (less its attachments); when the JWS header carries an X.509
certificate chain (x5c) the signature is verified against the first certificate's key.
"""
from __future__ import annotations

import base64
import binascii

import orjson

from services.progress.lrs.validation import Invalid, comparable

SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
_HASHES = {"RS256": "SHA256", "RS384": "SHA384", "RS512": "SHA512"}
_IGNORED = ("attachments", "authority", "stored", "version")


def _b64(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Invalid("signature: not base64url") from None


def verify(statement: dict, jws: bytes) -> None:
    try:
        header_b64, payload_b64, signature_b64 = jws.decode("ascii").strip().split(".")
    except (UnicodeDecodeError, ValueError):
        raise Invalid("signature: not a JWS compact serialisation") from None
    try:
        header = orjson.loads(_b64(header_b64))
        payload = orjson.loads(_b64(payload_b64))
    except orjson.JSONDecodeError:
        raise Invalid("signature: the JWS header or payload is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") not in _HASHES:
        raise Invalid("signature: the algorithm must be RS256, RS384 or RS512")
    if not isinstance(payload, dict):
        raise Invalid("signature: the payload is not a statement")
    mine, theirs = comparable(statement), comparable(payload)
    if "id" not in theirs:
        mine.pop("id", None)
    if mine != theirs:
        raise Invalid("signature: the signed payload differs from the statement")
    if header.get("x5c"):
        _verify_with_certificate(header, f"{header_b64}.{payload_b64}".encode(), _b64(signature_b64))


def _verify_with_certificate(header: dict, signed: bytes, signature: bytes) -> None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        algorithm = getattr(hashes, _HASHES[header["alg"]])()
        certificate.public_key().verify(signature, signed, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise Invalid("signature: the JWS signature does not verify against its x5c certificate") from None
    except (ValueError, TypeError, IndexError, binascii.Error):
        raise Invalid("signature: the x5c certificate is unusable") from None


def verify_all(statements: list[dict], parts: dict[str, tuple[str, bytes]]) -> None:
    for statement in statements:
        for attachment in statement.get("attachments") or ():
            if attachment.get("usageType") != SIGNATURE:
                continue
            if attachment.get("contentType", "").split(";")[0].strip() != "application/octet-stream":
                raise Invalid("signature: a signature attachment must be application/octet-stream")
            part = parts.get(attachment["sha2"].lower())
            if part is None:
                raise Invalid("signature: the signature attachment's content was not sent")
            verify(statement, part[1])
