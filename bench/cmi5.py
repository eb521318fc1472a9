"""cmi5 benchmark (issue 16): LEARNERS learners each launch one AU, fetch its token,
read LMS.LaunchData and their preferences, send initialized, completed, passed and
terminated, as an AU built on ADL's cmi5.js does.

Reported: launches per second (the operator's launch requests, under the whole load),
the AU requests' latency, and the time to `satisfied`. The LMS writes `satisfied` in the
same transaction as the statement that meets moveOn (here `passed`), so that time is
that request's own latency: p50 and p99 of it are given.

    python -m bench.cmi5 [--learners 4500] [--clients 32]
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

from tqdm import tqdm

from bench.common import isolated_stack, percentile, report
from services.progress.cmi5 import terms as c

OPERATOR = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
MODULE = f"""<?xml version="1.0"?>
<courseStructure xmlns="{c.NS}">
  <course id="https://bench.test/course"><title><langstring lang="en">Bench</langstring></title>
    <description><langstring lang="en">Bench</langstring></description></course>
  <au id="https://bench.test/au" moveOn="CompletedAndPassed" masteryScore="0.8">
    <title><langstring lang="en">AU</langstring></title><description><langstring lang="en">AU</langstring></description>
    <url>index.html</url></au>
</courseStructure>"""


def _package() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("cmi5.xml", MODULE)
        z.writestr("index.html", "<html></html>")
    return out.getvalue()


def _call(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def learner(base: str, course: str, n: int) -> dict:
    actor = {"objectType": "Agent", "account": {"homePage": "https://bench.test", "name": f"learner-{n}"}}
    started = time.perf_counter()
    status, launch = _call("POST", f"{base}/cmi5/courses/{course}/launches",
                           json.dumps({"au": 0, "actor": actor}).encode(),
                           {"Authorization": OPERATOR, "Content-Type": "application/json"})
    launched = time.perf_counter() - started
    assert status == 201, launch
    query = {k: v[0] for k, v in parse_qs(urlsplit(launch["url"]).query).items()}
    _, token = _call("POST", query["fetch"])
    xapi = {"Authorization": f"Basic {token['auth-token']}", "X-Experience-API-Version": "1.0.3"}
    scope = {"activityId": query["activityId"], "agent": query["actor"], "registration": query["registration"]}
    _, data = _call("GET", f"{base}/xapi/activities/state?" + urlencode({**scope, "stateId": c.LAUNCH_DATA}),
                    headers=xapi)
    _call("GET", f"{base}/xapi/agents/profile?" + urlencode({"profileId": c.LEARNER_PREFERENCES,
                                                            "agent": query["actor"]}), headers=xapi)
    timings = {"launch": launched}
    for name, verb, moveon, result, extensions in (
            ("initialized", c.INITIALIZED, False, None, {}),
            ("completed", c.COMPLETED, True, {"completion": True, "duration": "PT5M"}, {}),
            ("passed", c.PASSED, True, {"success": True, "duration": "PT5M", "score": {"scaled": 0.9}},
             {c.EXT_MASTERY: 0.8}),
            ("terminated", c.TERMINATED, False, {"duration": "PT10M"}, {})):
        categories = [{"id": c.CATEGORY_CMI5}] + ([{"id": c.CATEGORY_MOVEON}] if moveon else [])
        statement = {"id": str(uuid.uuid4()), "timestamp": "2026-12-02T04:00:00.000Z", "actor": actor,
                     "verb": {"id": verb}, "object": {"id": query["activityId"]},
                     "context": {"registration": query["registration"],
                                 "contextActivities": {**data["contextTemplate"]["contextActivities"],
                                                       "category": categories},
                                 "extensions": {**data["contextTemplate"]["extensions"], **extensions}}}
        if result:
            statement["result"] = result
        sent = time.perf_counter()
        status, body = _call("PUT", f"{base}/xapi/statements?statementId={statement['id']}",
                             json.dumps(statement).encode(), {**xapi, "Content-Type": "application/json"})
        assert status == 204, (name, body)
        timings[name] = time.perf_counter() - sent
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=4500)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    stack, run_id = isolated_stack(("progress",))
    stack.prepare()
    try:
        stack.start()
        base = stack.url("progress")
        status, course = _call("POST", f"{base}/cmi5/courses", _package(),
                               {"Authorization": OPERATOR, "Content-Type": "application/zip"})
        assert status == 201, course
        print(f"cmi5 benchmark {run_id}: {args.learners} learners, {args.clients} clients", flush=True)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(tqdm(pool.map(lambda n: learner(base, course["id"], n), range(args.learners)),
                                total=args.learners, desc="learners", unit="learner", mininterval=1, disable=None))
        elapsed = time.perf_counter() - started
    finally:
        stack.stop()

    def ms(name: str, pct: float) -> float:
        return round(1000 * percentile([r[name] for r in results], pct), 1)

    report("cmi5", run_id, {
        "learners": args.learners, "clients": args.clients, "seconds": round(elapsed, 1),
        # One launch per learner, each among the session's other requests: the launch rate
        # under the whole load.
        "launches_per_second": round(args.learners / elapsed, 1),
        "launch_ms_p50": ms("launch", 50), "launch_ms_p99": ms("launch", 99),
        "statement_ms_p50": ms("initialized", 50), "statement_ms_p99": ms("initialized", 99),
        "to_satisfied_ms_p50": ms("passed", 50), "to_satisfied_ms_p99": ms("passed", 99),
        "terminated_ms_p50": ms("terminated", 50), "terminated_ms_p99": ms("terminated", 99),
    })


if __name__ == "__main__":
    main()
