"""The progress projection in one process, without Kafka: bench.progress's statements
(one full wave plus enrolment-only waves) turned into records, spread over partitions by
key as the topics hold them, and applied in consumer-sized batches, live or as a rebuild
(replaying, then after_replay). For profiling (`--profile`) and quick before/after
comparisons of the projection code alone; `bench.progress` is the end-to-end figure.

    python -m bench.progress_inproc [--learners 4500] [--waves 8] [--rebuild] [--profile out.prof]
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import tempfile
import time
import zlib
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.progress import wave_statements
from services.progress.service import SERVICE
from shared import bus, db, events, xapi
from shared.config import Settings
from shared.consumer import ProjectionRunner, replay_engine


def records(learners: int, waves: int, partitions: int = 6) -> list[bus.Record]:
    modules = [f"https://content.example.org/dsk/module/{i}" for i in range(1, 11)]
    logs: dict[tuple[str, int], list[bus.Record]] = {}
    for wave in range(1, waves + 1):
        for topic, kind, stmt in wave_statements(wave, learners, modules, full=wave == 1):
            key = xapi.learner_key(stmt["actor"]).encode()
            tp = (topic, zlib.crc32(key) % partitions)
            log = logs.setdefault(tp, [])
            log.append(bus.Record(tp[0], tp[1], len(log), key, xapi.encode(stmt),
                                  events.statement_headers("bench", kind, stmt)))
    # A consumer's batches: a slice of each partition's log in turn, as fetches arrive.
    out, cursors = [], {tp: 0 for tp in logs}
    while cursors:
        for tp in list(cursors):
            start = cursors[tp]
            out.extend(logs[tp][start:start + 170])
            cursors[tp] = start + 170
            if cursors[tp] >= len(logs[tp]):
                del cursors[tp]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=4500)
    parser.add_argument("--waves", type=int, default=8)
    parser.add_argument("--batch", type=int, help="records per batch (default: CONSUMER_MAX_RECORDS, or "
                        "CONSUMER_REBUILD_RECORDS with --rebuild)")
    parser.add_argument("--rebuild", action="store_true",
                        help="project live untimed, clear the read models, then time a replay and after_replay")
    parser.add_argument("--profile", help="write cProfile stats here")
    parser.add_argument("--database-url", help="a PostgreSQL server to use: the run makes a database of its own "
                        "on it (the URL's database + _inproc), empty at the start and dropped at the end")
    args = parser.parse_args()
    all_records = records(args.learners, args.waves)
    tmp = tempfile.mkdtemp(prefix="progress-inproc-")
    url = f"sqlite:///{tmp}/db.sqlite"
    if args.database_url:  # every run from empty: one on the last run's rows measures a larger database
        made = make_url(args.database_url)
        url = made.set(database=f"{made.database}_inproc").render_as_string(hide_password=False)
        db.drop_database(url)
    db.migrate(url, SERVICE.migrations)
    settings = Settings.from_env("progress", {"PROGRESS_DATABASE_URL": url})
    engine = db.create_engine(url)
    runner = ProjectionRunner(settings, engine, SERVICE.projection(settings), SERVICE.offsets, SERVICE.processed,
                              publisher_factory=lambda: None)
    target = engine
    live_batch = args.batch or settings.consumer_max_records
    batch = args.batch or (settings.consumer_rebuild_records if args.rebuild else live_batch)
    if args.rebuild:
        # As `learnstream rebuild` finds it: the log projected live once (the LRS keeps its
        # statements), then the read models, claims and offsets cleared.
        for start in range(0, len(all_records), live_batch):
            runner.process(all_records[start:start + live_batch])
        with engine.begin() as conn:
            for table in reversed(runner.projection.tables):
                conn.execute(table.delete())
            conn.execute(runner.processed.delete())
            conn.execute(runner.offsets.delete())
        target = replay_engine(engine)
        gc.freeze()  # as ProjectionRunner.rebuild does
    profile = cProfile.Profile() if args.profile else None
    cpu, began = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    for start in range(0, len(all_records), batch):
        runner.process(all_records[start:start + batch], engine=target)
    if args.rebuild and runner.projection.after_replay:
        with target.begin() as conn:
            runner.projection.after_replay(conn, 0, 1)
    if profile:
        profile.disable()
        profile.dump_stats(args.profile)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    n = len(all_records)
    print(f"{n} records, {'rebuild' if args.rebuild else 'live'}: {n / wall:,.0f}/s, "
          f"{cpu / n * 1e6:.0f} us CPU per statement ({wall:.1f} s)")
    engine.dispose()
    db.drop_database(url)
    Path(tmp).rmdir()


if __name__ == "__main__":
    main()
