"""Forwarding's commands: targets created, changed and removed, quarantined statements
marked for replay; one method a command, one unit of work a method (shared.unit_of_work).
The forwarder (forwarder.py) reads what these write: it never takes orders from the web
tier directly, so a web process never waits for a target. Forwarding publishes nothing."""
from __future__ import annotations

import uuid
from collections.abc import Callable

from services.forwarding.domain import Filter, check_url
from services.forwarding.repository import ForwardingRepository
from shared import xapi
from shared.unit_of_work import UnitOfWork


def _settings(data: dict) -> dict:
    return {"name": data["name"], "url": check_url(data["url"]), "xapi_version": data["xapi_version"],
            "username": data["username"], "filter": Filter.of(data["filter"]).as_dict(), "enabled": data["enabled"],
            "batch_size": data["batch_size"], "timeout_seconds": data["timeout_seconds"]}


class ForwardingCommands:
    def __init__(self, new_uow: Callable[[], UnitOfWork[ForwardingRepository]], clock=xapi.utc_now,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())):
        self.new_uow, self.clock, self.new_id = new_uow, clock, new_id

    def create(self, data: dict, operator: str) -> str:
        now = self.clock()
        row = _settings(data) | {"id": self.new_id(), "password": data.get("password") or "", "revision": 1,
                                 "created_at": now, "updated_at": now, "updated_by": operator}
        with self.new_uow() as uow:
            uow.repo.add_target(row)
            uow.commit()
        return row["id"]

    def replace(self, target_id: str, data: dict, operator: str) -> None:
        """Every setting as given; the password only if given (it is never read back, so
        a client cannot send the old one again). The forwarder restarts the target's loop
        from its stored offsets: what was delivered stays delivered. A stopped target
        (too many refusals) starts again."""
        values = _settings(data) | {"updated_at": self.clock(), "updated_by": operator}
        if "password" in data:
            values["password"] = data["password"]
        with self.new_uow() as uow:
            uow.repo.require_target(target_id)
            uow.repo.change_target(target_id, values)
            uow.commit()

    def delete(self, target_id: str) -> None:
        """The target, its offsets, status and quarantine. Created again, a target starts
        from offset zero (the topics are kept forever) under a new id."""
        with self.new_uow() as uow:
            uow.repo.require_target(target_id)
            uow.repo.delete_target(target_id)
            uow.commit()

    def request_replay(self, target_id: str, statement_ids: list[str] | None) -> int:
        """Mark quarantined statements (all unresolved ones, or these) to be sent again;
        the target's loop sends them before its next batch. Returns how many were marked."""
        with self.new_uow() as uow:
            uow.repo.require_target(target_id)
            marked = uow.repo.request_replay(target_id, statement_ids, self.clock())
            uow.commit()
        return marked
