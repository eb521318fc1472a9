"""Blocking calls that must not stall a gevent event loop.

The progress service runs under gunicorn's gevent workers (many concurrent xAPI
clients per process). The database drivers block without yielding to gevent, so a call
that may wait long (a disk flush, a lock another process holds) goes through
`run_blocking`: in a native thread from gevent's pool when called on the event loop's
thread of a monkey-patched process, directly otherwise (sync workers, the worker
process, tests, and gevent's own pool threads).
"""
from __future__ import annotations

import sys


def _loop_thread() -> tuple[object, int] | None:
    """(the native get_ident, the event loop's thread) in a gevent-patched process.

    gunicorn's gevent worker patches the process before it imports the app, on the
    thread that then runs the event loop: this module is imported there."""
    if "gevent" not in sys.modules:
        return None
    from gevent import monkey
    if not monkey.is_module_patched("threading"):
        return None
    native_get_ident = monkey.get_original("_thread", "get_ident")
    return native_get_ident, native_get_ident()


_LOOP = _loop_thread()


def run_blocking(function, *args):
    if _LOOP is not None and _LOOP[0]() == _LOOP[1]:
        import gevent
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def cooperate() -> None:
    """Let the event loop serve its other connections before going on (a no-op outside
    a gevent event loop). Long CPU-bound work on the loop (a bulk statement request's
    validation) calls it between slices, so that other clients wait for a slice of it,
    not all of it; a native thread would not do: the loop would win the GIL back only
    every switch interval (5 ms) after each of its own system calls. `gevent.idle`, as
    the keep-alive hook in deploy/gunicorn.conf.py: the loop polls its sockets first."""
    if _LOOP is not None and _LOOP[0]() == _LOOP[1]:
        import gevent
        gevent.idle()
