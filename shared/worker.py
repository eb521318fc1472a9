"""A service's background process: the outbox relay and the projections, side by side.

Runs outside gunicorn so HTTP workers never hold Kafka producers or consumers, and so
the worker can be scaled (up to the partition count) independently of the web tier.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from shared import bus, db, logs
from shared.config import Settings
from shared.consumer import ProjectionRunner, ProjectionStopped
from shared.relay import Relay
from shared.service import Loop, ServiceSpec, Timer

log = logging.getLogger(__name__)


def wait_for_topics(settings: Settings, spec: ServiceSpec, stop: threading.Event) -> None:
    """Create the service's topics, waiting for the broker if it is not up yet."""
    delay = 0.5
    while not stop.is_set():
        try:
            bus.ensure_topics(settings, spec.topics(settings))
            return
        except Exception as exc:  # the broker away or still starting: nothing starts without topics
            log.warning("could not create the topics; waiting for the broker",
                        extra={"error": logs.described(exc), "retry_in_s": delay})
            stop.wait(delay)
            delay = min(delay * 2, 5)


def _create_topics(settings, spec, stop, ready: threading.Event) -> None:
    wait_for_topics(settings, spec, stop)
    ready.set()


def _after(ready: threading.Event, stop: threading.Event, work):
    """Start `work` once the topics exist (topics created by a consumer's auto-create
    would get the broker's defaults, not ours)."""
    def run():
        while not ready.wait(0.2):
            if stop.is_set():
                return
        work()
    return run


def _every(settings: Settings, engine, timer: Timer, stop: threading.Event) -> None:
    while not stop.wait(settings.timer_interval_seconds):
        try:
            timer.run(settings, engine)
        except Exception:  # one failed round must not stop the next
            log.exception("timer failed", extra={"timer": timer.name})


def _looping(settings: Settings, engine, loop: Loop, stop: threading.Event):
    """Run a service's loop until `stop`, starting it again after a backoff if it fails."""
    def run():
        delay = 1.0
        while not stop.is_set():
            try:
                loop.run(settings, engine, stop)
            except Exception as exc:  # whatever it was: the process stays up, the loop comes back
                log.warning("loop failed; starting it again", extra={"loop": loop.name, "error": logs.described(exc)},
                            exc_info=logs.traceback_is_safe(exc))
                stop.wait(delay)
                delay = min(delay * 2, settings.consumer_retry_max_seconds)
    return run


PARTS = ("relay", "projections")


def run_worker(settings: Settings, spec: ServiceSpec, stop: threading.Event | None = None,
               parts: tuple[str, ...] = PARTS) -> None:
    """`parts`: both by default; one of them to run the relay and the projections (with
    the timers) as separate processes, so that neither waits for the other's share of
    one interpreter lock (the relay of a busy LRS fell seconds behind)."""
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signum, lambda *_: stop.set())
    engine = db.create_engine(settings.database_url, timeouts=settings.database_timeouts)
    topics_ready = threading.Event()
    threads = [threading.Thread(target=_create_topics, args=(settings, spec, stop, topics_ready), name="topics")]
    relay = None
    if spec.outbox is not None and "relay" in parts:
        # Its own engine: its writes jump SQLite's write queue (shared.db.create_engine).
        relay_engine = db.create_engine(settings.database_url, priority=True, timeouts=settings.database_timeouts)
        relay = Relay(settings, relay_engine, spec.outbox)
        threads.append(threading.Thread(target=_after(topics_ready, stop, lambda: relay.run(stop)), name="relay"))
    if "projections" in parts:
        if spec.projection is not None:
            runner = ProjectionRunner(settings, engine, spec.projection(settings), spec.offsets, spec.processed)

            def consume():
                delay = 1.0
                while not stop.is_set():
                    try:
                        runner.run(stop)
                    except ProjectionStopped as exc:
                        # The process stays up (the relay and timers go on); a restart
                        # would only meet the same records again.
                        log.error("projection stopped", extra={"reason": str(exc)})
                        return
                    except Exception as exc:  # a fresh consumer, after a pause, whatever it was
                        log.warning("consumer failed; starting a new one", extra={"error": logs.described(exc)},
                                    exc_info=logs.traceback_is_safe(exc))
                        stop.wait(delay)
                        delay = min(delay * 2, settings.consumer_retry_max_seconds)
            threads.append(threading.Thread(target=_after(topics_ready, stop, consume), name="projection"))
        threads += [threading.Thread(target=_after(topics_ready, stop, _looping(settings, engine, loop, stop)),
                                     name=loop.name) for loop in spec.loops]
        threads += [threading.Thread(target=_every, args=(settings, engine, timer, stop), name=timer.name)
                    for timer in spec.timers]
    log.info("worker started", extra={"parts": [t.name for t in threads]})
    for thread in threads:
        thread.start()
    # Every part waits and retries by itself (broker or database away): the process
    # ends only when told to.
    while not stop.is_set():
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    engine.dispose()
    if relay is not None:
        relay.engine.dispose()
    log.info("worker stopped")
