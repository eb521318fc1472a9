"""What every benchmark shares: an isolated stack, timing and reporting."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from shared.config import VAR_DIR
from shared.stack import Stack, free_port

BENCH_DIR = VAR_DIR / "bench"


def isolated_stack(services: tuple[str, ...]) -> tuple[Stack, str]:
    """A stack with its own databases, topic prefix and ports, so runs never see each
    other nor a `make run` on the same machine (whose 800x ports they would have found
    taken, and then measured that stack instead)."""
    run_id = time.strftime("%Y%m%d-%H%M%S")
    env = dict(os.environ, KAFKA_TOPIC_PREFIX=f"bench{run_id}.", LOG_LEVEL="WARNING",
               LEARNSTREAM_CREDENTIALS="bench:bench-secret")
    env.update({f"{service.upper()}_PORT": str(free_port()) for service in services})
    if env.get("DATABASE_URL"):
        url = make_url(env["DATABASE_URL"])
        env["DATABASE_URL"] = url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)
        for service in services:  # start from empty databases
            from shared import db
            from shared.config import service_database_url
            db.drop_database(service_database_url(service, env))
    else:
        env["DATABASE_URL"] = f"sqlite:///{BENCH_DIR / run_id / 'db.sqlite'}"
    return Stack(env=env, services=services), run_id


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(name: str, run_id: str, figures: dict) -> Path:
    figures = {"benchmark": name, "run": run_id, "machine": f"{platform.machine()} {os.cpu_count()} cores",
               "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite", **figures}
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}-{run_id}.json"
    path.write_text(json.dumps(figures, indent=2))
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    print(f"  (saved to {path})")
    return path
