"""gunicorn settings shared by every learnstream service (`learnstream run` passes -c this file).

Sync workers by default: docs/performance.md (Ceilings) measured them steadier than gthread under
keep-alive load on 2 cores. A service may ask for another class (ServiceSpec.
web_worker_class: the progress service, with the LRS, runs gevent); the Stack passes it
as --worker-class. GUNICORN_WORKER_CLASS / WEB_CONCURRENCY override, after measuring.
"""
import gc
import json
import logging
import os
import re

import gunicorn.util

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 60
graceful_timeout = 20
keepalive = 5
# No access log by default: Prometheus metrics carry the same numbers without paths,
# and paths carry identifiers. Errors still go to stderr.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def child_exit(server, worker):
    # Prometheus multiprocess mode: drop the dead worker's live gauges.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

# gunicorn 27's control socket defaults to one path per user: several services on one
# machine would fight over it, and nothing here uses it.
control_socket_disable = True


class _RequestContentRedacted(logging.Filter):
    """gunicorn logs what it refused or failed on: "Invalid request from ip=...: Invalid
    Request Line 'GET /xapi/statements?agent=...'", "Error handling request GET /path?...".
    Paths and query strings carry learners' identifiers (personal data): the log keeps
    why and the method, not the request's text."""

    QUOTED = re.compile(r"'[^']*'")
    TARGET = re.compile(r"^(Error handling request)( [A-Z]+)? .*$", re.S)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid request from"):
            record.msg, record.args = self.QUOTED.sub("'…'", message), ()
        elif message.startswith("Error handling request"):
            record.msg, record.args = self.TARGET.sub(r"\1\2 …", message), ()
        return True


def post_worker_init(worker):
    logging.getLogger("gunicorn.error").addFilter(_RequestContentRedacted())
    # The app is loaded: what exists now (Flask, SQLAlchemy, the schemas, ~115,000 objects
    # in the progress service) lives as long as the worker. Unfrozen, the collector rescans
    # it all in every oldest-generation pass: 70-95 ms of stalled requests each time,
    # every few dozen 100-statement pages (README, LRS performance).
    gc.freeze()
    if "gevent" in type(worker).__module__:
        import gevent
        worker.between_requests = gevent.idle


def post_request(worker, req, environ, resp):
    # gevent: one greenlet serves a keep-alive connection, and reads its next request
    # without yielding when the client has already sent it. A fast client thus kept its
    # worker to itself while the other connections' requests waited: p99 of 0.5-1.3 s for
    # GET pages with p50 3 ms. Waiting here until the event loop is idle lets every
    # connection with a request waiting go first.
    between_requests = getattr(worker, "between_requests", None)
    if between_requests is not None:
        between_requests()


def _json_error(sock, status_int, reason, mesg):
    """What gunicorn writes for a request it refuses before any app sees it (a request
    line or headers too long: 414, 431; a malformed request: 400; a worker error: 500).
    gunicorn's own is an HTML page; our clients get the JSON body every other error has.
    Replaces gunicorn.util.write_error, which gunicorn calls only for these."""
    body = json.dumps({"code": status_int, "status": reason, "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = _json_error
