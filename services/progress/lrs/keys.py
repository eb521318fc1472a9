"""The hashes the LRS indexes by: agents (their IFI), activities, verbs, documents.

Long identifiers (IRIs, agents) are indexed by their SHA-256, so every index stays small
and the same on SQLite and PostgreSQL (services.progress.lrs.tables). Storage
(store.py, documents.py) and queries (queries.py) hash alike through these.
"""
from __future__ import annotations

import functools
import hashlib


@functools.lru_cache(maxsize=65_536)  # activities, verbs and authorities repeat in almost every statement
def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def agent_key(agent: dict) -> str:
    """The hash an Agent or identified Group is indexed by (its IFI, normalised)."""
    if agent.get("mbox"):
        ifi = "mbox:" + agent["mbox"].lower()
    elif agent.get("mbox_sha1sum"):
        ifi = "mbox_sha1sum:" + agent["mbox_sha1sum"].lower()
    elif agent.get("openid"):
        ifi = "openid:" + agent["openid"]
    elif isinstance(agent.get("account"), dict):
        ifi = f"account:{agent['account'].get('homePage')}|{agent['account'].get('name')}"
    else:  # an anonymous group: its members identify it
        ifi = "group:" + ",".join(sorted(agent_key(m) for m in agent.get("member") or ()))
    return digest(ifi)


def activity_key(activity_id: str) -> str:
    return digest(activity_id)
