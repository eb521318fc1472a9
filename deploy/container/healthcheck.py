"""The image's HEALTHCHECK: a web tier answers /healthz (liveness, not /readyz: a lost
database makes a container unready, which is no reason to restart it). A worker part has
no HTTP port; it counts as healthy while its process runs (PID 1 exiting ends the
container, and the orchestrator restarts it)."""
import os
import sys
import urllib.request

with open("/proc/1/cmdline", "rb") as f:
    argv = f.read().split(b"\0")
if b"gunicorn" not in argv:
    sys.exit(0)
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz", timeout=3) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError as exc:
    print(f"healthz: {exc}", file=sys.stderr)
    sys.exit(1)
