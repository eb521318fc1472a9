"""Issue 2's benchmark: one programme's 8 waves of 4,500 learners (36,000 enrolments)
imported through the HTTP API, until every one is in the progress read model.

Prints enrolments/s for the import, for publishing and end to end, and the p99 of the
delay from commit to read model. The delay is measured per wave: an import's response
leaves after its commit, so its arrival time stands for the commit; the read model's
per-cohort counts are sampled every 50 ms and each new row is timed when first seen.
"""
from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa
from tqdm import tqdm

from bench.common import isolated_stack, percentile, report
from services.enrollment import tables as enrollment_tables
from services.progress import tables as progress_tables
from shared import db

AUTH = ("bench", "bench-secret")


def learners_csv(wave: int, size: int) -> str:
    rows = ["name,email,organisation"]
    rows += [f"Official {wave}-{i},official.{wave}.{i}@agency.example.org,Unit {i % 40}" for i in range(size)]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waves", type=int, default=8)
    parser.add_argument("--size", type=int, default=4500, help="learners per wave")
    parser.add_argument("--clients", type=int, default=2, help="concurrent import requests")
    args = parser.parse_args()
    total = args.waves * args.size

    stack, run_id = isolated_stack(("enrollment", "progress"))
    print(f"enrollment benchmark {run_id}: {args.waves} waves x {args.size} learners")
    stack.prepare()
    with stack:  # stops every part it started, whatever happens
        figures = run(stack, args.waves, args.size, args.clients, total)
    report("enrollment", run_id, figures)


def run(stack, waves: int, size: int, clients: int, total: int) -> dict:
    http = requests.Session()
    http.auth = AUTH
    base = stack.url("enrollment")
    programme = http.post(f"{base}/programmes", json={
        "code": "DSK", "title": "Digital skills for civil servants",
        "required_modules": [f"https://content.example.org/dsk/module/{i}" for i in range(1, 11)],
        "final_test": "https://content.example.org/dsk/final-test"}).json()
    cohorts = [http.post(f"{base}/cohorts", json={
        "programme_id": programme["id"], "name": f"Province wave {w}", "agency": "Ministry of Interior",
        "province": "Province A", "wave": w, "accounts_issued_at": "2026-11-23"}).json() for w in range(1, waves + 1)]
    files = {c["id"]: learners_csv(i, size) for i, c in enumerate(cohorts)}

    enrollment_engine = db.create_engine(stack.settings("enrollment").database_url)
    progress_engine = db.create_engine(stack.settings("progress").database_url)
    committed_at: dict[str, float] = {}
    request_seconds: list[float] = []
    arrivals: dict[str, list[float]] = {c["id"]: [] for c in cohorts}
    times: dict[str, float] = {}
    done = threading.Event()

    def sample():
        counts = {c: 0 for c in arrivals}
        unpublished_seen_zero = False
        while not done.is_set():
            now = time.perf_counter()
            with db.reading(progress_engine) as conn:
                rows = conn.execute(sa.select(progress_tables.learner_enrolments.c.cohort_id, sa.func.count())
                                    .group_by(progress_tables.learner_enrolments.c.cohort_id)).all()
            for cohort_id, count in rows:
                if count > counts.get(cohort_id, 0):
                    arrivals[cohort_id] += [now] * (count - counts[cohort_id])
                    counts[cohort_id] = count
            if "import" in times and not unpublished_seen_zero:
                with db.reading(enrollment_engine) as conn:
                    if outbox_pending(conn) == 0:
                        times["published"] = now
                        unpublished_seen_zero = True
            bar.n = sum(counts.values())
            bar.refresh()
            if sum(counts.values()) >= total and unpublished_seen_zero:
                times["end_to_end"] = now
                return
            time.sleep(0.05)

    def import_wave(cohort_id: str) -> None:
        started = time.perf_counter()
        response = http.post(f"{base}/cohorts/{cohort_id}/enrolments/import", data=files[cohort_id].encode(),
                             headers={"Content-Type": "text/csv"})
        finished = time.perf_counter()
        response.raise_for_status()
        assert response.json()["enrolled"] == size, response.json()
        committed_at[cohort_id] = finished
        request_seconds.append(finished - started)

    bar = tqdm(total=total, unit="enrolment", desc="in read model", mininterval=0.5, disable=None)
    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(import_wave, files))
    times["import"] = time.perf_counter()
    sampler.join(timeout=600)
    done.set()
    bar.close()
    enrollment_engine.dispose()
    progress_engine.dispose()
    if "end_to_end" not in times:
        raise SystemExit("the read model did not reach every enrolment within 10 minutes")

    delays = [arrival - committed_at[c] for c, seen in arrivals.items() for arrival in seen]
    return {
        "enrolments": total,
        "import_seconds": round(times["import"] - start, 2),
        "import_per_second": round(total / (times["import"] - start)),
        "import_request_p99_seconds": round(percentile(request_seconds, 99), 2),
        "published_seconds": round(times["published"] - start, 2),
        "publish_per_second": round(total / (times["published"] - start)),
        "end_to_end_seconds": round(times["end_to_end"] - start, 2),
        "end_to_end_per_second": round(total / (times["end_to_end"] - start)),
        "commit_to_read_model_p50_seconds": round(percentile(delays, 50), 2),
        "commit_to_read_model_p99_seconds": round(percentile(delays, 99), 2),
        "goal": "36,000 end to end in under 20 s",
    }


def outbox_pending(conn) -> int:
    table = enrollment_tables.outbox
    return conn.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.published_at.is_(None)))


if __name__ == "__main__":
    main()
