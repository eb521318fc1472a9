#!/usr/bin/env python3
"""A consumer of learnstream's topics for an analytics team: copy every statement into a
SQLite table, once, and keep the dead-letter quarantine beside it.

    pip install confluent-kafka
    python examples/analytics_consumer.py --bootstrap 127.0.0.1:9092 --db analytics.sqlite

- A consumer group (--group): run several copies and the partitions are shared out;
  stop one and the others take its partitions over.
- At least once: offsets are committed to Kafka only after the batch is committed to
  SQLite, so a crash re-reads a batch rather than losing it...
- ...and dedupe by ce_id (the statement id): a re-read or republished record (the outbox
  relay may publish twice, never lose) is not stored twice.
- Where to start: a new group starts at the beginning; --from beginning replays from
  offset zero, --from now skips to the end (history and the backlog are left unread).
- --dead-letters also reads learnstream.<service>.deadletter.v1: each dead letter, and the
  resolution markers (no value, `dead-letter-resolves: partition:offset`) a replay appends.

Records written before the CloudEvents headers carry `event-type`/`source` and no `ce_*`;
they are read too (docs/events.md, Headers). Topics are kept forever (docs/consuming.md).
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer

SCHEMA = """
CREATE TABLE IF NOT EXISTS statements (
    ce_id TEXT PRIMARY KEY, ce_type TEXT, ce_source TEXT,
    subject TEXT,  -- ce_subject, the record key: the learner key, or a course's id (learnstream.content.v1)
    recorded_at TEXT,
    topic TEXT, partition INTEGER, "offset" INTEGER, statement TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic TEXT, partition INTEGER, "offset" INTEGER, ce_id TEXT, consumer TEXT, reason TEXT,
    consumed_from TEXT, resolved TEXT,  -- NULL while in quarantine, else the replay's outcome
    PRIMARY KEY (topic, partition, "offset"));
"""


def header(message, name: str) -> str | None:
    for key, value in message.headers() or ():
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else None
    return None


def event_of(message) -> dict:
    """A record's CloudEvents attributes, from either generation of headers."""
    ce_type = header(message, "ce_type")
    if ce_type is None:  # written before the CloudEvents headers
        legacy = header(message, "event-type")
        ce_type = f"dev.learnstream.{legacy}" if legacy else None
        source = header(message, "source")
        return {"ce_id": json.loads(message.value())["id"], "ce_type": ce_type,
                "ce_source": f"/learnstream/{source}" if source else None,
                "subject": message.key().decode() if message.key() else None, "time": None}
    return {"ce_id": header(message, "ce_id"), "ce_type": ce_type, "ce_source": header(message, "ce_source"),
            "subject": header(message, "ce_subject"), "time": header(message, "ce_time")}


def store(db: sqlite3.Connection, messages) -> dict:
    """One batch, one transaction; returns what it did."""
    done = {"stored": 0, "duplicates": 0, "dead_letters": 0, "resolved": 0}
    with db:
        for m in messages:
            where = (m.topic(), m.partition(), m.offset())
            if m.topic().endswith(".deadletter.v1"):
                resolves = header(m, "dead-letter-resolves")
                if m.value() is None and resolves:  # a replay settled the dead letter at partition:offset
                    partition, offset = resolves.split(":")
                    db.execute('UPDATE dead_letters SET resolved = ? '
                               'WHERE topic = ? AND partition = ? AND "offset" = ?',
                               (header(m, "dead-letter-outcome"), m.topic(), int(partition), int(offset)))
                    done["resolved"] += 1
                else:  # keyed by position: a dead letter keeps the ce_id of the record it copies
                    db.execute("INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                               (*where, header(m, "ce_id"), header(m, "dead-letter-consumer"),
                                header(m, "dead-letter-reason"), header(m, "dead-letter-topic")))
                    done["dead_letters"] += 1
                continue
            event = event_of(m)
            inserted = db.execute("INSERT OR IGNORE INTO statements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  (event["ce_id"], event["ce_type"], event["ce_source"], event["subject"],
                                   event["time"], *where, m.value().decode())).rowcount
            done["stored" if inserted else "duplicates"] += 1
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--prefix", default="", help="the deployment's KAFKA_TOPIC_PREFIX, if any")
    parser.add_argument("--group", default="analytics")
    parser.add_argument("--db", default="analytics.sqlite")
    parser.add_argument("--from", dest="start", choices=["committed", "beginning", "now"], default="committed",
                        help="committed: where the group left off (a new group: the beginning)")
    parser.add_argument("--dead-letters", action="store_true", help="read the dead-letter topics too")
    parser.add_argument("--exit-when-idle", type=float, default=0,
                        help="stop after this many seconds without a record (batch runs); 0: run until SIGTERM")
    args = parser.parse_args(argv)

    db = sqlite3.connect(args.db)
    db.executescript(SCHEMA)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group,
        "enable.auto.commit": False,  # committed by hand, after SQLite: at least once
        "auto.offset.reset": "earliest",  # a new group starts from the first fact
        "isolation.level": "read_committed",
        "topic.metadata.refresh.interval.ms": 10_000,  # a new topic is picked up within 10 s
    })
    prefix = re.escape(args.prefix)
    patterns = [f"^{prefix}learnstream\\.[a-z]+\\.v1$"]  # a leading ^ makes it a regex subscription
    if args.dead_letters:
        patterns.append(f"^{prefix}learnstream\\.[a-z]+\\.deadletter\\.v1$")
    rewound: set[tuple[str, int]] = set()
    last_record = [time.monotonic()]  # or the last assignment: joining a group takes seconds

    def on_assign(client, partitions):
        # --from applies once per partition and process, not on every later rebalance.
        if args.start != "committed":
            for tp in partitions:
                if (tp.topic, tp.partition) not in rewound:
                    tp.offset = OFFSET_BEGINNING if args.start == "beginning" else OFFSET_END
                    rewound.add((tp.topic, tp.partition))
        client.assign(partitions)
        last_record[0] = time.monotonic()
        print(json.dumps({"event": "assigned", "partitions": len(partitions)}), flush=True)

    consumer.subscribe(patterns, on_assign=on_assign)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    totals = {"stored": 0, "duplicates": 0, "dead_letters": 0, "resolved": 0}
    try:
        while not stopping:
            messages = [m for m in consumer.consume(500, timeout=0.5) if m.error() is None]
            if not messages:
                if args.exit_when_idle and time.monotonic() - last_record[0] > args.exit_when_idle:
                    break
                continue
            last_record[0] = time.monotonic()
            for key, count in store(db, messages).items():
                totals[key] += count
            consumer.commit(asynchronous=False)  # only now: what SQLite holds is what Kafka forgets
    finally:
        consumer.close()
        db.close()
    print(json.dumps({"event": "stopped", **totals}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
