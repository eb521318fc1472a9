"""Blocking calls that must not stall a gevent event loop.

The progress service runs under gunicorn's gevent workers (many concurrent xAPI
clients per process). The database drivers block without yielding to gevent, so a call
that may wait long (a disk flush, a lock another process holds) goes through
`run_blocking`: in a native thread from gevent's pool when called on the event loop's
thread of a monkey-patched process, directly otherwise (sync workers, the worker
process, tests, and gevent's own pool threads).
"""
from __future__ import annotations

import _thread
import sys


def _gevent_patched() -> bool:
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey
    return monkey.is_module_patched("threading")


def _native_thread_id() -> int:
    if _gevent_patched():
        from gevent import monkey
        return monkey.get_original("_thread", "get_ident")()
    return _thread.get_ident()


# gunicorn's gevent worker patches the process before it imports the app, on the thread
# that then runs the event loop: remember that thread.
_LOOP_THREAD = _native_thread_id() if _gevent_patched() else None


def run_blocking(function, *args):
    if _LOOP_THREAD is not None and _native_thread_id() == _LOOP_THREAD:
        import gevent
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)
