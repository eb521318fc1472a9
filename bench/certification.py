"""Issue 5's benchmark: a cohort of 4,500 learners who all qualify.

The cohort is enrolled through the enrollment API and every module completion is put on
the LRS topic first; then each learner's final-test pass (the last deciding statement)
goes on the assessment topic, as fast as the producer takes them. Measured per learner:
from that pass being produced to the certificate being verifiable. The certificates
table is sampled every 50 ms for all of them (a committed certificate is what the public
endpoint serves); for a random sample the public JSON endpoint itself is polled until it
answers "valid". Prints certificates/s and the p50/p99 of both delays.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from tqdm import tqdm

from bench.common import isolated_stack, percentile, report
from services.certification import tables as t
from shared import bus, db, events, xapi

AUTH = ("bench", "bench-secret")
LMS = xapi.agent(name="Content player", account_home_page="https://lms.example.org", account_name="player")


def learners_csv(size: int) -> str:
    rows = ["name,email,organisation"]
    rows += [f"Official {i},official.{i}@agency.example.org,Unit {i % 40}" for i in range(size)]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4500, help="learners in the cohort")
    parser.add_argument("--modules", type=int, default=5, help="required modules")
    parser.add_argument("--http-sample", type=int, default=200, help="learners verified through the public API")
    args = parser.parse_args()
    stack, run_id = isolated_stack(("enrollment", "certification"))
    print(f"certification benchmark {run_id}: {args.size} qualifying learners, {args.modules} modules")
    stack.prepare()
    with stack:  # stops every part it started, whatever happens
        figures = run(stack, args.size, args.modules, args.http_sample)
    report("certification", run_id, figures)


def _count(engine, table) -> int:
    with db.reading(engine) as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def _wait(what: str, check, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not reached in {timeout}s")
        time.sleep(0.2)


def run(stack, size: int, modules: int, http_sample: int) -> dict:
    http = requests.Session()
    http.auth = AUTH
    base = stack.url("enrollment")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    programme = http.post(f"{base}/programmes", json={
        "code": "DSK", "title": "Digital skills for civil servants",
        "required_modules": [f"https://content.example.org/dsk/module/{i}" for i in range(1, modules + 1)],
        "final_test": "https://content.example.org/dsk/final-test"}).json()
    cohort = http.post(f"{base}/cohorts", json={
        "programme_id": programme["id"], "name": "Province wave 1", "agency": "Ministry of Interior",
        "province": "Province A", "wave": 1, "accounts_issued_at": today.date().isoformat()}).json()
    response = http.post(f"{base}/cohorts/{cohort['id']}/enrolments/import", data=learners_csv(size).encode(),
                         headers={"Content-Type": "text/csv"})
    response.raise_for_status()
    learners = []
    for page in range(1, size // 1000 + 2):
        learners += http.get(f"{base}/enrolments", params={"cohort_id": cohort["id"], "page": page,
                                                            "page_size": 1000}).json()["items"]
    assert len(learners) == size, len(learners)

    settings = stack.settings("certification")
    engine = db.create_engine(settings.database_url)
    _wait("every enrolment known to certification", lambda: _count(engine, t.learner_enrolments) >= size)
    publisher = bus.Publisher(settings, role="bench")
    pending: list[tuple] = []
    started = today + timedelta(days=1)

    def send(service: str, event_type: str, stmt: dict) -> None:
        pending.append((settings.topic(service), xapi.learner_key(stmt["actor"]).encode(), xapi.encode(stmt),
                        events.headers(service, event_type)))

    def flush() -> None:
        publisher.publish(pending)
        pending.clear()

    actors = {e["id"]: {"objectType": "Agent", "name": e["learner"]["name"], "mbox": f"mailto:{e['learner']['email']}"}
              for e in learners}
    for e in learners:
        for i, module in enumerate(programme["required_modules"]):
            send("lrs", events.EventType.LRS_STATEMENT, xapi.statement(
                actors[e["id"]], xapi.COMPLETED, xapi.activity(module), authority=LMS,
                timestamp=started + timedelta(minutes=i)))
    flush()
    _wait("every module completion stored", lambda: _count(engine, t.achievements) >= size * modules)
    print(f"  {size} enrolled, {size * modules} completions stored; now the final-test passes")

    produced_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    verified_at: dict[str, float] = {}
    sampled = set(random.Random(5).sample([e["id"] for e in learners], min(http_sample, size)))
    public = stack.url("certification")
    done = threading.Event()
    bar = tqdm(total=size, unit="cert", desc="certificates", mininterval=0.5, disable=None)

    def verify(registration: str, code: str) -> None:
        session = requests.Session()
        while not done.is_set():
            answer = session.get(f"{public}/api/verify/{code}", timeout=10)
            if answer.status_code == 200 and answer.json()["status"] == "valid":
                verified_at[registration] = time.perf_counter()
                return
            time.sleep(0.01)

    def sample() -> None:
        c = t.certificates
        while not done.is_set() and len(seen_at) < size:
            now = time.perf_counter()
            with db.reading(engine) as conn:
                rows = conn.execute(sa.select(c.c.registration, c.c.verification_code)
                                    .where(c.c.number.is_not(None))).all()
            for registration, code in rows:
                if registration not in seen_at:
                    seen_at[registration] = now
                    if registration in sampled:
                        threading.Thread(target=verify, args=(registration, code), daemon=True).start()
            bar.n = len(seen_at)
            bar.refresh()
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    first = time.perf_counter()
    for e in learners:
        stmt = xapi.statement(
            actors[e["id"]], xapi.PASSED, xapi.activity(programme["final_test"]),
            authority=xapi.service_agent("assessment"), registration=e["id"],
            context_extensions={xapi.EXT_ATTEMPT: {"id": str(uuid.uuid4()), "number": 1}},
            result={"score": {"scaled": 0.9}, "success": True, "completion": True},
            timestamp=started + timedelta(hours=1))
        produced_at[e["id"]] = time.perf_counter()
        send("assessment", events.EventType.ATTEMPT_PASSED, stmt)
    flush()
    produced = time.perf_counter()
    sampler.join(timeout=600)
    deadline = time.monotonic() + 60
    while len(verified_at) < len(sampled) and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    bar.close()
    publisher.close()
    issued = _count(engine, t.certificates)
    engine.dispose()
    if len(seen_at) < size:
        raise SystemExit(f"only {len(seen_at)} of {size} certificates within 10 minutes")
    last = max(seen_at.values())
    delays = [seen_at[r] - produced_at[r] for r in seen_at]
    http_delays = [verified_at[r] - produced_at[r] for r in verified_at]
    return {
        "learners": size,
        "required_modules": modules,
        "certificates_issued": issued,
        "passes_produced_seconds": round(produced - first, 2),
        "all_certified_seconds": round(last - first, 2),
        "certificates_per_second": round(size / (last - first)),
        "pass_to_certificate_p50_seconds": round(percentile(delays, 50), 2),
        "pass_to_certificate_p99_seconds": round(percentile(delays, 99), 2),
        "http_verified_sample": len(http_delays),
        "pass_to_verified_via_public_api_p50_seconds": round(percentile(http_delays, 50), 2),
        "pass_to_verified_via_public_api_p99_seconds": round(percentile(http_delays, 99), 2),
    }


if __name__ == "__main__":
    main()
