"""The load generator of the cluster tests and benchmark: run on the load host
(`ip netns exec ls-load .venv/bin/python -m tests.support.cluster_load ...`).

Closed-loop clients POST one xAPI statement each (an id of our own, so every statement
can be followed from acknowledgement to topic to read model) to the progress service's
LRS on the app hosts, alternating between hosts. A host that does not answer is left
out by that client for a moment, as a load balancer would. Every request is written to
`--out` as one JSON line: statement id, HTTP status (0: no answer), seconds taken,
whether an error body was JSON, and when it was acknowledged. Synthetic learners only
(`mailto:cluster-load-N@example.invalid`); nothing about them is logged.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

# A request unanswered after this long counts as a hang (the tests assert none happen
# while the database is away): the services answer 503 well before it, their database
# timeouts being 3 s to connect and 5 s per statement in the cluster.
REQUEST_TIMEOUT_S = 20.0
# A host that refused or dropped a connection is skipped by that client this long.
HOST_BACKOFF_S = 1.0


def statement(prefix: str, learner: int, module: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:cluster-load-{learner}@example.invalid"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"objectType": "Activity", "id": f"{prefix}m{module}"},
        "result": {"completion": True, "duration": "PT10S"},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class Client(threading.Thread):
    def __init__(self, index: int, targets: list[str], auth: str, prefix: str, learners: int,
                 stop: threading.Event, sink, lock: threading.Lock, rate: float | None):
        super().__init__(daemon=True, name=f"load-{index}")
        self.index, self.targets, self.prefix, self.learners = index, targets, prefix, learners
        self.stop, self.sink, self.lock, self.rate = stop, sink, lock, rate
        self.headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
                        "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
        self.connections: dict[int, http.client.HTTPConnection] = {}
        self.skip_until = [0.0] * len(targets)

    def connection(self, target: int) -> http.client.HTTPConnection:
        if target not in self.connections:
            url = urlsplit(self.targets[target])
            self.connections[target] = http.client.HTTPConnection(url.hostname, url.port, timeout=REQUEST_TIMEOUT_S)
        return self.connections[target]

    def drop(self, target: int) -> None:
        conn = self.connections.pop(target, None)
        if conn is not None:
            conn.close()

    def run(self) -> None:
        n = self.index
        while not self.stop.is_set():
            now = time.monotonic()
            order = [(n + i) % len(self.targets) for i in range(len(self.targets))]
            target = next((t for t in order if self.skip_until[t] <= now), order[0])
            stmt = statement(self.prefix, n % self.learners, n % 4)
            body = json.dumps(stmt).encode()
            started = time.monotonic()
            status, is_json = 0, None
            try:
                reused = target in self.connections
                try:
                    conn = self.connection(target)
                    conn.request("POST", "/xapi/statements", body=body, headers=self.headers)
                    response = conn.getresponse()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    if not reused:
                        raise
                    # The server closed an idle keep-alive connection (gunicorn's keepalive)
                    # before reading this request: send it again on a new one, as HTTP
                    # clients do. Safe: the statement carries its id.
                    self.drop(target)
                    conn = self.connection(target)
                    conn.request("POST", "/xapi/statements", body=body, headers=self.headers)
                    response = conn.getresponse()
                payload = response.read()
                status = response.status
                if status >= 300:
                    try:
                        json.loads(payload)
                        is_json = True
                    except ValueError:
                        is_json = False
            except (OSError, http.client.HTTPException):
                self.drop(target)
                self.skip_until[target] = time.monotonic() + HOST_BACKOFF_S
            elapsed = time.monotonic() - started
            line = json.dumps({"id": stmt["id"], "status": status, "s": round(elapsed, 4), "json": is_json,
                               "target": target, "at": time.time()})
            with self.lock:
                self.sink.write(line + "\n")
            n += 1
            if self.rate:
                time.sleep(max(0.0, 1 / self.rate - elapsed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, help="an LRS base URL (http://host:port)")
    parser.add_argument("--auth-file", type=Path, required=True, help="a file holding the LRS key:secret")
    parser.add_argument("--prefix", required=True, help="activity id prefix of this run's statements")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True, help="the load stops once this file exists")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--rate", type=float, default=None, help="statements/s per client (default: closed loop)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop after this long whatever happens")
    args = parser.parse_args()
    if args.clients < 1 or args.learners < 1:
        parser.error("--clients and --learners must be at least 1")
    auth = args.auth_file.read_text().strip()
    if ":" not in auth:
        parser.error(f"{args.auth_file} holds no key:secret")
    stop, lock = threading.Event(), threading.Lock()
    deadline = time.monotonic() + args.max_seconds
    with args.out.open("a", buffering=1) as sink:
        clients = [Client(i, args.target, auth, args.prefix, args.learners, stop, sink, lock, args.rate)
                   for i in range(args.clients)]
        for client in clients:
            client.start()
        while not args.stop_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for client in clients:
            client.join(timeout=REQUEST_TIMEOUT_S + 5)


if __name__ == "__main__":
    main()
