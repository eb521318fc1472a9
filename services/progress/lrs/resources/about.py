"""/xapi/about: the xAPI versions this LRS speaks (no credentials, no version header)."""
from __future__ import annotations

from flask import Response

from services.progress.lrs import protocol as p
from services.progress.lrs.deps import Lrs


def about_resource(lrs: Lrs, xr: p.XRequest) -> Response:
    if xr.method not in ("GET", "HEAD"):
        raise p.XError(405, "GET only")
    p.allowed(xr, set())
    return p.json_response({"version": ["1.0.3", "2.0.0"], "extensions": {}})
