"""Driving the cluster of deploy/cluster from this machine (the bridge's 10.77.0.1):
faults through cluster.sh, load from the load host, and the three counts every fault
test compares: statements acknowledged, distinct statement ids on the LRS topic, and
what the progress read model holds."""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa

from shared import bus
from shared.config import REPO_ROOT, Settings

SCRIPT = REPO_ROOT / "deploy" / "cluster" / "cluster.sh"
STATE = REPO_ROOT / "var" / "cluster"
BOOTSTRAP = "10.77.0.11:9092,10.77.0.12:9092,10.77.0.13:9092"
APP_HOSTS = {1: "10.77.0.31", 2: "10.77.0.32"}
BROKERS = {1: "10.77.0.11", 2: "10.77.0.12", 3: "10.77.0.13"}
PG_SERVER = "postgresql+psycopg://learnstream:learnstream@10.77.0.20:5432"
LRS_TOPIC = "learnstream.lrs.v1"
PROGRESS_GROUP = "learnstream.progress"


def sh(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def is_up() -> bool:
    return subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def settings() -> Settings:
    return Settings(service="progress", database_url="", kafka_bootstrap_servers=BOOTSTRAP)


_engines: dict[str, sa.Engine] = {}


def engine(service: str) -> sa.Engine:
    if service not in _engines:
        # Short timeouts: the tests themselves ask while the database host may be away.
        _engines[service] = sa.create_engine(f"{PG_SERVER}/learnstream_{service}", pool_pre_ping=True,
                                             connect_args={"connect_timeout": 3})
    return _engines[service]


def read_model(prefix: str) -> Counter:
    """Statement ids of this run in the progress read model (learner_statements), with
    the seconds each contributes to a learner's time spent."""
    with engine("progress").connect() as conn:
        rows = conn.execute(sa.text("SELECT statement_id, seconds FROM learner_statements "
                                    "WHERE activity_id LIKE :p"), {"p": prefix + "%"}).all()
    return Counter({row.statement_id: row.seconds for row in rows})


def topic_ids(prefix: str) -> Counter:
    """How many times each statement id of this run is on the LRS topic (a relay that
    republishes after a failure may put one there twice; consumers deduplicate)."""
    ids: Counter = Counter()
    needle = prefix.encode()
    for record in bus.read_topics(settings(), [LRS_TOPIC], timeout=120):
        if record.value and needle in record.value:
            stmt = orjson.loads(record.value)
            if str(stmt.get("object", {}).get("id", "")).startswith(prefix):
                ids[stmt["id"].lower()] += 1
    return ids


def outbox_backlog(service: str = "progress") -> int:
    with engine(service).connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


def lease_holders(service: str = "progress") -> set[str]:
    """The addresses of the hosts whose sessions hold an advisory lock (the relay lease)
    on the service's database."""
    with engine(service).connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = :db"), {"db": f"learnstream_{service}"})
        return {row[0] for row in rows}


def group_assignment(group: str = PROGRESS_GROUP) -> dict[str, set[int]]:
    """Partitions of the LRS topic each host's members of the group are assigned."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    owners: dict[str, set[int]] = {}
    for member in description.members:
        host = member.host.lstrip("/")
        for tp in member.assignment.topic_partitions:
            if tp.topic == LRS_TOPIC:
                owners.setdefault(host, set()).add(tp.partition)
    return owners


def partition_leaders(topic: str = LRS_TOPIC) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader broker id, in-sync replicas)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    return {p: (m.leader, list(m.isrs)) for p, m in meta.partitions.items()}


RUNNING: list = []  # loads started and not yet stopped: heal() stops them


@dataclass
class Load:
    """Load from the load host, for as long as the test needs it."""

    targets: list[str]
    clients: int = 4
    rate: float | None = None
    prefix: str = field(default_factory=lambda: f"https://cluster.example.invalid/{uuid.uuid4().hex[:10]}/")
    process: subprocess.Popen | None = None

    def __post_init__(self):
        run = self.prefix.rstrip("/").rsplit("/", 1)[-1]
        self.out = STATE / f"load-{run}.jsonl"
        self.stop_file = STATE / f"load-{run}.stop"

    def start(self) -> Load:
        RUNNING.append(self)
        argv = ["ip", "netns", "exec", "ls-load", str(REPO_ROOT / ".venv" / "bin" / "python"), "-m",
                "tests.support.cluster_load", "--auth-file", str(STATE / "lrs-credentials"),
                "--prefix", self.prefix, "--out", str(self.out), "--stop-file", str(self.stop_file),
                "--clients", str(self.clients)]
        for target in self.targets:
            argv += ["--target", target]
        if self.rate:
            argv += ["--rate", str(self.rate)]
        self.process = subprocess.Popen(argv, cwd=REPO_ROOT)
        return self

    def stop(self) -> list[dict]:
        if self in RUNNING:
            RUNNING.remove(self)
        self.stop_file.touch()
        if self.process is not None:
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.results()

    def results(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def acknowledged(self) -> int:
        return sum(1 for r in self.results() if 200 <= r["status"] < 300)


def lrs_targets(*hosts: int) -> list[str]:
    return [f"http://{APP_HOSTS[h]}:8002" for h in hosts]


@dataclass
class Tally:
    acknowledged: set[str]
    answered: Counter  # status -> count
    topic: Counter
    read_model: Counter

    def summary(self) -> str:
        dupes = sum(n - 1 for n in self.topic.values() if n > 1)
        return (f"acknowledged {len(self.acknowledged)}, statuses {dict(self.answered)}, distinct on topic "
                f"{len(self.topic)} (+{dupes} republished), read model {len(self.read_model)}")


def settle(load: Load, timeout: float = 180) -> Tally:
    """After the load: wait until the topic holds every acknowledged statement and the
    read model every statement on the topic, then return the three counts."""
    results = load.results()
    acknowledged = {r["id"] for r in results if 200 <= r["status"] < 300}
    answered = Counter(r["status"] for r in results)
    holder: dict = {}

    def caught_up():
        holder["topic"] = topic_ids(load.prefix)
        holder["read_model"] = read_model(load.prefix)
        return (acknowledged <= set(holder["topic"]) and set(holder["read_model"]) >= set(holder["topic"])
                and outbox_backlog() == 0)

    try:
        wait_until(caught_up, timeout, "topic and read model catching up with the acknowledged statements", 2)
    except AssertionError:
        pass  # the caller's assertions say what is missing
    return Tally(acknowledged, answered, holder.get("topic", Counter()), holder.get("read_model", Counter()))


def assert_exact(tally: Tally) -> None:
    """Nothing acknowledged is missing, nothing is counted twice."""
    missing_topic = tally.acknowledged - set(tally.topic)
    assert not missing_topic, f"{len(missing_topic)} acknowledged statements not on the topic; {tally.summary()}"
    missing_model = set(tally.topic) - set(tally.read_model)
    assert not missing_model, f"{len(missing_model)} statements on the topic not in the read model; {tally.summary()}"
    extra = set(tally.read_model) - set(tally.topic)
    assert not extra, f"{len(extra)} read-model rows for statements not on the topic; {tally.summary()}"
    # Each statement contributes its 10 s once: a fact applied twice would show here.
    assert all(seconds == 10 for seconds in tally.read_model.values()), tally.summary()
    assert tally.acknowledged, f"no statement was acknowledged at all; {tally.summary()}"


def heal() -> None:
    """Undo every fault a test may have left (a failing test must not fail the next)."""
    for load in list(RUNNING):
        load.stop()
    for host in ("k1", "k2", "k3", "pg", "app1", "app2", "load"):
        sh("link-up", host)
    for host in ("app1", "app2"):
        sh("unblock-kafka", host)
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True).stdout
    for n in (1, 2, 3):
        if f"k{n} not running" in status:
            sh("start-broker", str(n), timeout=400)
    for n in (1, 2):
        if f"app{n} not running" in status:
            sh("start-app", str(n), timeout=600)


def co_partitioned(assignment: dict[str, set[int]]) -> bool:
    """Every LRS partition owned by exactly one host."""
    owned = [p for parts in assignment.values() for p in parts]
    return sorted(owned) == list(range(6))


def acks_between(load: Load, start: float, end: float) -> int:
    return sum(1 for r in load.results() if 200 <= r["status"] < 300 and start <= r["at"] <= end)
