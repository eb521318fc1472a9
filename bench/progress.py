"""Issue 6's benchmark: a whole wave replayed at full speed into the progress read models.

4,500 learners, each enrolled, 10 modules with three statements per module (launched,
progressed, completed; through learnstream.lrs.v1 as the LRS publishes them), the final
test (attempted, scored, passed on learnstream.assessment.v1) and a certificate
(learnstream.certification.v1); plus 7 more waves of enrolments only, so the campaign
view spans 36,000 learners. Everything is produced to Kafka first, then the progress
worker starts and projects it.

Reports statements projected per second; the lag from a statement reaching the bus to
the cohort view (p50/p99: statement i is counted as visible once the worker has applied
i statements, sampled every 50 ms — exact for the throughput, an approximation per
statement since partitions interleave); and the response time of the dashboard's JSON
endpoints for the 4,500 cohort and the 36,000 campaign (median of 20 requests each).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from tqdm import tqdm

from bench.common import isolated_stack, percentile, report
from bench.lrs import cpu_snapshot
from services.progress import tables as t
from services.progress.service import SERVICE
from shared import bus, db, events, xapi
from shared.consumer import ProjectionRunner

LAUNCHED = xapi.Verb("http://adlnet.gov/expapi/verbs/launched", "launched")
PROGRESSED = xapi.Verb("http://adlnet.gov/expapi/verbs/progressed", "progressed")
START = datetime(2026, 11, 23, 8, tzinfo=UTC)
AUTH = ("bench", "bench-secret")


def wave_statements(wave: int, learners: int, modules: list[str], full: bool):
    """(topic, event type, statement) for one wave, in the order things happen."""
    programme_id = "dsk"
    final_test = "https://content.example.org/dsk/final-test"
    programme = xapi.activity("https://learnstream.dev/xapi/activities/programmes/DSK", name="Digital skills",
                              type_=xapi.ACTIVITY_TYPE_PROGRAMME, extensions={xapi.EXT_PROGRAMME: {
                                  "id": programme_id, "code": "DSK", "required_modules": modules,
                                  "final_test": final_test, "window_days": 10}})
    cohort_id = f"cohort-{wave}"
    cohort = xapi.activity(f"https://learnstream.dev/xapi/activities/cohorts/{cohort_id}", name=f"Wave {wave}",
                           type_=xapi.ACTIVITY_TYPE_COHORT, extensions={xapi.EXT_COHORT: {
                               "id": cohort_id, "programme_id": programme_id, "agency": f"Agency {wave % 3}",
                               "province": "Province A", "wave": wave,
                               "accounts_issued_at": xapi.format_timestamp(START)}})
    authority = xapi.service_agent("bench")
    for n in range(learners):
        actor = xapi.agent(name=f"Official {wave}-{n}", email=f"official.{wave}.{n}@agency.example.org")
        registration = str(uuid.uuid4())
        at = START + timedelta(minutes=n % 600)
        yield "enrollment", events.EventType.LEARNER_ENROLLED, xapi.statement(
            actor, xapi.REGISTERED, programme, authority=authority, registration=registration, parent=programme,
            grouping=cohort, context_extensions={xapi.EXT_DEADLINE: xapi.format_timestamp(START + timedelta(days=10)),
                                                 xapi.EXT_ORGANISATION: f"Unit {n % 40}"}, timestamp=at)
        if not full:
            continue
        for day, module in enumerate(modules):
            moment = at + timedelta(days=day % 7, hours=1)
            for verb, result in ((LAUNCHED, None), (PROGRESSED, {"duration": "PT5M"}),
                                 (xapi.COMPLETED, {"completion": True, "duration": "PT10M"})):
                yield "lrs", events.EventType.LRS_STATEMENT, xapi.statement(
                    actor, verb, xapi.activity(module), authority=authority, registration=registration,
                    result=result, timestamp=moment)
                moment += timedelta(minutes=10)
        done = at + timedelta(days=8)
        test = xapi.activity(final_test)
        yield "assessment", events.EventType.ATTEMPT_STARTED, xapi.statement(
            actor, xapi.ATTEMPTED, test, authority=authority, registration=registration, timestamp=done)
        yield "assessment", events.EventType.ATTEMPT_SCORED, xapi.statement(
            actor, xapi.SCORED, test, authority=authority, registration=registration,
            result={"score": {"scaled": 0.8}}, timestamp=done + timedelta(minutes=20))
        yield "assessment", events.EventType.ATTEMPT_PASSED, xapi.statement(
            actor, xapi.PASSED, test, authority=authority, registration=registration,
            result={"score": {"scaled": 0.8}, "success": True}, timestamp=done + timedelta(minutes=20))
        number = f"DSK-2026-{wave:02d}{n:05d}"
        yield "certification", events.EventType.CERTIFICATE_EARNED, xapi.statement(
            actor, xapi.EARNED, xapi.activity(f"https://learnstream.dev/certificates/{number}",
                                              extensions={xapi.EXT_CERTIFICATE: {
                                                  "id": number, "number": number, "programme_id": programme_id,
                                                  "issued_at": xapi.format_timestamp(done + timedelta(hours=1))}}),
            authority=authority, registration=registration, timestamp=done + timedelta(hours=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=4500, help="learners per wave")
    parser.add_argument("--waves", type=int, default=8, help="waves in the campaign (the first one in full)")
    parser.add_argument("--rebuild-jobs", default="1,2", metavar="N,N,...",
                        help="the rebuilds to time, one after another, by their --jobs (default 1,2)")
    args = parser.parse_args()
    stack, run_id = isolated_stack(("progress",))
    print(f"progress benchmark {run_id}: 1 full wave + {args.waves - 1} enrolment-only waves of {args.learners}")
    stack.prepare()
    settings = stack.settings("progress")
    modules = [f"https://content.example.org/dsk/module/{i}" for i in range(1, 11)]
    publisher = bus.Publisher(settings, role="bench")
    sent_at: list[float] = []
    produce_started = time.perf_counter()
    for wave in range(1, args.waves + 1):
        batch = []
        for topic, kind, stmt in tqdm(wave_statements(wave, args.learners, modules, full=wave == 1),
                                      desc=f"produce wave {wave}", unit="stmt", mininterval=1, disable=None):
            batch.append((settings.topic(topic), xapi.learner_key(stmt["actor"]).encode(), xapi.encode(stmt),
                          events.statement_headers("bench", kind, stmt)))
            sent_at.append(time.perf_counter())
        publisher.publish(batch)
    publisher.close()
    total = len(sent_at)
    print(f"produced {total} statements in {time.perf_counter() - produce_started:.1f}s; starting the worker")

    engine = db.create_engine(settings.database_url)
    try:
        figures = measure(stack, engine, total, sent_at)
        stack.stop()  # the worker stopped, as for an operator's rebuild
        figures.update(rebuild(settings, engine, total, [int(n) for n in args.rebuild_jobs.split(",")]))
    finally:  # whatever happens (a failed start, a KeyError), nothing is left running
        stack.stop()
        engine.dispose()
    report("progress", run_id, figures)


def measure(stack, engine, total: int, sent_at: list[float]) -> dict:
    """Start the stack, time the projection of everything produced, then the dashboard's reads."""
    applied_at: list[tuple[float, int]] = []
    stack.start()
    cpu_before = cpu_snapshot(stack)
    start = time.perf_counter()
    bar = tqdm(total=total, desc="projected", unit="stmt", mininterval=1, disable=None)
    while True:
        with db.reading(engine) as conn:
            applied = conn.scalar(sa.select(sa.func.count()).select_from(t.processed_statements))
        now = time.perf_counter()
        applied_at.append((now, applied))
        bar.n = applied
        bar.refresh()
        if applied >= total or now - start > 1800:
            break
        time.sleep(0.05)
    bar.close()
    projections_cpu = cpu_snapshot(stack)["projections"] - cpu_before["projections"]
    elapsed = applied_at[-1][0] - start
    # Statement i is visible at the first sample with at least i applied.
    lags, cursor = [], 0
    for i, produced in enumerate(sent_at, start=1):
        while applied_at[cursor][1] < i:
            cursor += 1
        lags.append(applied_at[cursor][0] - max(produced, start))

    http = requests.Session()
    http.auth = AUTH
    base = stack.url("progress")

    def median_ms(path: str) -> float:
        timings = []
        for _ in range(20):
            began = time.perf_counter()
            http.get(f"{base}{path}").raise_for_status()
            timings.append((time.perf_counter() - began) * 1000)
        return round(statistics.median(timings), 1)

    cohort = http.get(f"{base}/cohorts/cohort-1")
    cohort.raise_for_status()
    cohort = cohort.json()
    figures = {
        "statements": total,
        "projection_seconds": round(elapsed, 1),
        "statements_projected_per_second": round(total / elapsed),
        "lag_to_cohort_view_p50_seconds": round(percentile(lags, 50), 2),
        "lag_to_cohort_view_p99_seconds": round(percentile(lags, 99), 2),
        "cohort_certified": cohort["certified"],
        "ms_cohort_counts_4500": median_ms("/cohorts/cohort-1"),
        "ms_cohort_learners_page_4500": median_ms("/cohorts/cohort-1/learners?page_size=100&sort=progress"),
        "ms_cohort_series_4500": median_ms("/cohorts/cohort-1/series"),
        "ms_campaign_36000": median_ms("/campaign"),
        "ms_cohort_list_36000": median_ms("/cohorts?page_size=100"),
        "ms_rollup_by_agency_36000": median_ms("/rollups?by=agency"),
    }
    figures["projections_cpu_us_per_statement"] = round(projections_cpu / total * 1e6)
    return figures


def rebuild(settings, engine, total: int, jobs_to_time: list[int]) -> dict:
    """`learnstream rebuild progress` as an operator runs it (the worker stopped): the
    whole log again from offset zero, with its progress bar; once for each of these
    `--jobs` (by default in this process, then with 2), so they compare within one run.
    CPU counts the rebuild processes."""
    runner = ProjectionRunner(settings, engine, SERVICE.projection(settings), SERVICE.offsets, SERVICE.processed)
    figures = {}
    for jobs in jobs_to_time:
        name = "rebuild" if jobs == 1 else f"rebuild_{jobs}_jobs"
        cpu, began = _cpu_with_children(), time.perf_counter()
        read = runner.rebuild(progress=True, jobs=jobs)
        seconds, cpu = time.perf_counter() - began, _cpu_with_children() - cpu
        with db.reading(engine) as conn:
            applied = conn.scalar(sa.select(sa.func.count()).select_from(t.processed_statements))
        assert applied == total, f"the rebuild ({jobs} jobs) applied {applied} of {total}"
        figures.update({f"{name}_records": read, f"{name}_seconds": round(seconds, 1),
                        f"{name}_statements_per_second": round(read / seconds),
                        f"{name}_cpu_us_per_statement": round(cpu / read * 1e6)})
        figures.update({f"{name}_{phase}_seconds": round(spent, 1)
                        for phase, spent in runner.last_rebuild_seconds.items()})
    return figures


def _cpu_with_children() -> float:
    """This process's CPU and its reaped children's (the rebuild's jobs); bench.lrs's
    cpu_snapshot reads other processes from /proc, which a reaped child has left."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


if __name__ == "__main__":
    main()
