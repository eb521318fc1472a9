"""Issue 15's benchmark: statements forwarded to another LRS, and commit → target latency.

Two stacks, as `make run` runs them (gunicorn, relay and projection processes, Kafka):
the source (progress: the LRS; forwarding) and the target, a second learnstream LRS with
its own databases, topic prefix and port. One target is configured through the
forwarding API (batches of --batch-size).

1. Backlog: --backlog statements are posted to the source while the target is disabled;
   then it is enabled, and the time from the first to the last statement stored at the
   target gives the forwarding rate (statements forwarded/s: the ceiling of one target
   loop and of the target LRS together, on this machine).
2. Live: --live more statements posted by --clients clients in POSTs of 10, while
   forwarding runs; for each, from its `stored` at the source (set in the transaction
   that commits it) to its `stored` at the target (both this machine's clock): p50/p99.
"""
from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import isolated_stack, percentile, report
from services.progress.lrs import auth as lrs_auth
from services.progress.lrs import tables as lrs_tables
from shared import db
from shared.stack import Stack, free_port

AUTH = ("bench", "bench-secret")
XAPI = {"X-Experience-API-Version": "2.0.0"}


def statement(n: int, module: int) -> dict:
    return {"id": str(uuid.uuid4()), "actor": {"objectType": "Agent", "mbox": f"mailto:official.{n}@agency.example"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
            "object": {"objectType": "Activity", "id": f"https://content.example.org/modules/{module}"}}


def target_stack(source: Stack) -> Stack:
    env = dict(source.env, KAFKA_TOPIC_PREFIX=source.env["KAFKA_TOPIC_PREFIX"] + "target.",
               PROGRESS_PORT=str(free_port()))
    url = make_url(env["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("db.sqlite", "target.sqlite")
    else:
        env["DATABASE_URL"] = url.set(database=f"{url.database}_target").render_as_string(hide_password=False)
        from shared.config import service_database_url
        db.drop_database(service_database_url("progress", env))
    return Stack(env=env, services=("progress",))


def credential(stack: Stack, name: str) -> tuple[str, str]:
    engine = db.create_engine(stack.settings("progress").database_url)
    try:
        return lrs_auth.create(engine, name, ["all"])
    finally:
        engine.dispose()


def stored_at(stack: Stack, ids: list[str]) -> dict[str, float]:
    engine = db.create_engine(stack.settings("progress").database_url)
    s = lrs_tables.statements
    found = {}
    try:
        with engine.connect() as conn:
            for chunk in db.chunks(ids):
                found.update({sid: at.timestamp() for sid, at in conn.execute(
                    sa.select(s.c.id, s.c.stored).where(s.c.id.in_(chunk)))})
    finally:
        engine.dispose()
    return found


def unpublished(stack: Stack) -> int:
    from services.progress.service import SERVICE

    engine = db.create_engine(stack.settings("progress").database_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(SERVICE.outbox)
                               .where(SERVICE.outbox.c.published_at.is_(None)))
    finally:
        engine.dispose()


def count(stack: Stack) -> int:
    engine = db.create_engine(stack.settings("progress").database_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(lrs_tables.statements))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--live", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100, help="statements per POST to the target")
    args = parser.parse_args()
    source, run_id = isolated_stack(("progress", "forwarding"))
    target = target_stack(source)
    print(f"forwarding benchmark {run_id}: backlog {args.backlog}, live {args.live}, {args.clients} clients")
    source.prepare()
    target.prepare()
    source_key = credential(source, "bench player")
    target_key = credential(target, "forwarder")
    with target, source:  # stops every part they started, whatever happens
        figures = run(source, target, source_key, target_key, args)
    report("forwarding", run_id, figures)


def _post_all(url: str, key: tuple[str, str], statements: list[dict], per_post: int, clients: int) -> None:
    def post(chunk):
        with requests.Session() as session:
            session.post(url, json=chunk, auth=key, headers=XAPI, timeout=60).raise_for_status()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, [statements[i:i + per_post] for i in range(0, len(statements), per_post)]))


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not reached in {timeout:.0f} s")
        time.sleep(0.05)


def run(source: Stack, target: Stack, source_key, target_key, args) -> dict:
    api = requests.Session()
    api.auth = AUTH
    lrs = f"{source.url('progress')}/xapi/statements"
    body = {"name": "ministry", "url": f"{target.url('progress')}/xapi", "xapi_version": "2.0.0",
            "username": target_key[0], "password": target_key[1], "batch_size": args.batch_size, "enabled": False}
    created = api.post(f"{source.url('forwarding')}/targets", json=body)
    created.raise_for_status()
    target_id = created.json()["id"]

    # 1. The backlog, then forwarding switched on.
    learners = 1000
    backlog = [statement(i % learners, i // learners) for i in range(args.backlog)]
    _post_all(lrs, source_key, backlog, 100, args.clients)
    _until(lambda: unpublished(source) == 0, 300, "the backlog on the topic")
    api.put(f"{source.url('forwarding')}/targets/{target_id}", json=dict(body, enabled=True)).raise_for_status()
    # Timed from the first statement at the target: the forwarder notices the change
    # within its supervision interval (2 s), which is not forwarding.
    _until(lambda: count(target) > 0, 60, "the first statement forwarded")
    started, already = time.perf_counter(), count(target)
    _until(lambda: count(target) >= args.backlog, 900, "the backlog forwarded")
    drained = time.perf_counter() - started

    # 2. Live: posted while forwarding runs.
    live = [statement(i % learners, 1000 + i // learners) for i in range(args.live)]
    live_started = time.perf_counter()
    _post_all(lrs, source_key, live, 10, args.clients)
    posted = time.perf_counter() - live_started
    ids = [s["id"] for s in live]
    _until(lambda: count(target) >= args.backlog + args.live, 600, "the live statements forwarded")
    at_source, at_target = stored_at(source, ids), stored_at(target, ids)
    lags = [at_target[i] - at_source[i] for i in ids]
    status = api.get(f"{source.url('forwarding')}/targets/{target_id}").json()["status"]
    return {
        "backlog_statements": args.backlog,
        "target_batch_size": args.batch_size,
        "backlog_forwarded_seconds": round(drained, 2),
        "forwarded_per_second": round((args.backlog - already) / drained, 1),
        "live_statements": args.live,
        "live_posted_per_second": round(args.live / posted, 1),
        "commit_to_target_p50_seconds": round(percentile(lags, 50), 3),
        "commit_to_target_p99_seconds": round(percentile(lags, 99), 3),
        "commit_to_target_max_seconds": round(max(lags), 3),
        "delivered_reported": status["delivered"],
        "quarantined": status["quarantined"],
    }


if __name__ == "__main__":
    main()
