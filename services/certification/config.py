"""Settings of the certification service beyond shared.config.Settings.

CERTIFICATION_PUBLIC_URL: the public address of the verification pages, printed on
certificates and encoded in their QR codes (default http://127.0.0.1:8004). Read here,
once at start-up, because shared.config has no per-service extras yet.
"""
from __future__ import annotations

import os

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8004"


def public_url(env=os.environ) -> str:
    return (env.get("CERTIFICATION_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")


def verification_url(base: str, code: str) -> str:
    return f"{base}/verify/{code}"
