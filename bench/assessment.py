"""Issue 4's benchmark: a cohort of 4,500 learners each taking the final test over HTTP.

The enrollment service enrols the cohort (CSV import); once the assessment service has
learnt every enrolment from the bus, client threads start an attempt and submit answers
for each learner (two requests per attempt). Reports attempts scored per second and the
lag from a submission's response (after its commit) to the pass/fail read model,
sampled every 100 ms from the cohort's counts (p50/p99: the i-th response is counted as
visible once i learners are decided — the read model is per learner, so this is exact
for throughput and a close approximation per attempt).
"""
from __future__ import annotations

import argparse
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from tqdm import tqdm

from bench.common import isolated_stack, percentile, report

AUTH = ("bench", "bench-secret")
TOPICS = ("security", "privacy", "e-services", "data")


def bank() -> dict:
    return {"questions": [
        {"id": f"{topic}-{i}", "text": f"{topic} question {i}?", "type": "single_choice", "topic": topic,
         "options": ["right", "wrong", "maybe"], "correct": "right"}
        for topic in TOPICS for i in range(15)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=4500)
    parser.add_argument("--clients", type=int, default=8, help="concurrent learners taking the test")
    args = parser.parse_args()
    stack, run_id = isolated_stack(("enrollment", "assessment"))
    print(f"assessment benchmark {run_id}: {args.learners} learners, {args.clients} clients")
    stack.prepare()
    with stack:  # stops every part it started, whatever happens
        figures = run(stack, args.learners, args.clients)
    report("assessment", run_id, figures)


def run(stack, learners: int, clients: int) -> dict:
    http = requests.Session()
    http.auth = AUTH
    enrollment, assessment = stack.url("enrollment"), stack.url("assessment")
    programme = http.post(f"{enrollment}/programmes", json={
        "code": "DSK", "title": "Digital skills", "final_test": "https://content.example.org/dsk/final-test",
        "required_modules": ["https://content.example.org/dsk/m1"]}).json()
    cohort = http.post(f"{enrollment}/cohorts", json={
        "programme_id": programme["id"], "name": "Wave 1", "agency": "Ministry", "wave": 1,
        "accounts_issued_at": time.strftime("%Y-%m-%d")}).json()
    rows = ["name,email"] + [f"Official {i},official.{i}@agency.example.org" for i in range(learners)]
    http.post(f"{enrollment}/cohorts/{cohort['id']}/enrolments/import", data="\n".join(rows).encode(),
              headers={"Content-Type": "text/csv"}).raise_for_status()
    http.post(f"{assessment}/programmes/{programme['id']}/question-bank", json=bank()).raise_for_status()
    http.put(f"{assessment}/programmes/{programme['id']}/final-test", json={
        "per_topic": {t: 5 for t in TOPICS}, "time_limit_minutes": 60, "pass_mark": 0.7,
        "max_attempts": 1}).raise_for_status()

    registrations, page = [], 1
    while True:
        listed = http.get(f"{enrollment}/enrolments", params={"cohort_id": cohort["id"], "page": page,
                                                             "page_size": 1000}).json()
        registrations += [item["id"] for item in listed["items"]]
        if page * 1000 >= listed["total"]:
            break
        page += 1

    def counts() -> dict:
        return http.get(f"{assessment}/cohorts/{cohort['id']}/results", params={"page_size": 1}).json()["counts"]

    deadline = time.monotonic() + 300
    while sum(counts().values()) < learners:  # the assessment service learns enrolments from the bus
        if time.monotonic() > deadline:
            raise SystemExit("the assessment service did not learn every enrolment within 5 minutes")
        time.sleep(0.5)

    responses: list[float] = []
    lock = threading.Lock()
    rng = random.Random(7)

    def take_test(registration: str) -> None:
        session = requests.Session()
        session.auth = AUTH
        attempt = session.post(f"{assessment}/attempts", json={"registration": registration})
        attempt.raise_for_status()
        answers = {q["id"]: ("right" if rng.random() < 0.8 else "wrong") for q in attempt.json()["questions"]}
        submitted = session.post(f"{assessment}/attempts/{attempt.json()['id']}/submission", json={"answers": answers})
        submitted.raise_for_status()
        with lock:
            responses.append(time.perf_counter())

    decided_at: list[tuple[float, int]] = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            c = counts()
            # One attempt allowed: every submitted learner is decided, passed or failed.
            decided_at.append((time.perf_counter(), c.get("passed", 0) + c.get("failed", 0)))
            if decided_at[-1][1] >= learners and len(responses) >= learners:
                return
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    with ThreadPoolExecutor(clients) as pool:
        list(tqdm(pool.map(take_test, registrations), total=learners, desc="attempts", unit="attempt",
                  mininterval=1, disable=None))
    scored = time.perf_counter()
    sampler.join(timeout=600)
    done.set()
    responses.sort()
    lags, cursor = [], 0
    for i, answered in enumerate(responses, start=1):
        while cursor < len(decided_at) - 1 and decided_at[cursor][1] < i:
            cursor += 1
        lags.append(max(0.0, decided_at[cursor][0] - answered))
    final = counts()
    return {
        "learners": learners,
        "clients": clients,
        "attempts_scored_seconds": round(scored - start, 2),
        "attempts_scored_per_second": round(learners / (scored - start), 1),
        "read_model_complete_seconds": round(decided_at[-1][0] - start, 2),
        "lag_to_read_model_p50_seconds": round(percentile(lags, 50), 2),
        "lag_to_read_model_p99_seconds": round(percentile(lags, 99), 2),
        "passed": final.get("passed", 0),
        "failed": final.get("failed", 0),
    }


if __name__ == "__main__":
    main()
