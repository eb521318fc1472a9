"""What the shared runtime (CLI, worker, test fixtures) needs to know about a service.

Each service declares one `SERVICE = ServiceSpec(...)` in `services/<name>/service.py`;
that module is the one visible place where its parts are put together.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from shared.config import SERVICES, Settings
from shared.consumer import Projection


@dataclass(frozen=True)
class Timer:
    """Work a service's worker does by the clock rather than on an event (every
    TIMER_INTERVAL_SECONDS), such as closing attempts whose time ran out."""

    name: str
    run: Callable[[Settings, Engine], object]


@dataclass(frozen=True)
class Loop:
    """Long-running work of a service's worker that is neither a projection nor a timer
    (forwarding: one HTTP client loop per target). `run(settings, engine, stop)` returns
    when `stop` is set; if it raises, the worker starts it again after a backoff."""

    name: str
    run: Callable[[Settings, Engine, threading.Event], None]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    metadata: sa.MetaData
    migrations: Path
    create_app: Callable[[Settings], Flask]
    outbox: sa.Table | None = None
    offsets: sa.Table | None = None
    processed: sa.Table | None = None
    projection: Callable[[Settings], Projection] | None = None
    timers: tuple[Timer, ...] = ()
    # Run in the worker's projections part, beside the projection and the timers.
    loops: tuple[Loop, ...] = ()
    # Producers whose topics the loops read (created before they start, like the projection's).
    loop_topics: tuple[str, ...] = ()
    # The producer name of the topic the outbox feeds, when not the service's own.
    produces: str | None = None
    # Other topics the outbox feeds too (enrollment: accounts, learnstream.accounts.v1).
    also_produces: tuple[str, ...] = ()
    # gunicorn's worker class: "gevent" for a service that serves many concurrent clients
    # and groups their writes into one commit (shared.group_commit).
    web_worker_class: str = "sync"
    # Commands of its own under `learnstream` (progress: lrs-credentials).
    commands: tuple[click.Command, ...] = ()

    @property
    def worker_parts(self) -> tuple[str, ...]:
        """The worker's processes this service has: a relay if it has an outbox, projections
        if it has read models, loops or timers (forwarding has no relay, so it gets no
        idle process)."""
        parts = []
        if self.outbox is not None:
            parts.append("relay")
        if self.projection is not None or self.loops or self.timers:
            parts.append("projections")
        return tuple(parts)

    def topics(self, settings: Settings) -> list[str]:
        """Every topic this service touches: the one it produces, those it consumes, its dead letters."""
        topics = []
        if self.outbox is not None:
            topics.append(settings.topic(self.produces) if self.produces else settings.own_topic)
            topics += [settings.topic(producer) for producer in self.also_produces]
        if self.projection is not None:
            topics += self.projection(settings).topics + [settings.dead_letter_topic]
        topics += [settings.topic(producer) for producer in self.loop_topics]
        return list(dict.fromkeys(topics))


def available() -> tuple[str, ...]:
    """The services built so far (a service exists once it has a service.py)."""
    root = Path(__file__).resolve().parent.parent / "services"
    return tuple(name for name in SERVICES if (root / name / "service.py").exists())


def load(name: str) -> ServiceSpec:
    return importlib.import_module(f"services.{name}.service").SERVICE
