"""State, activity profile and agent profile documents.

Writes take the document's row lock (PostgreSQL: SELECT ... FOR UPDATE after an
INSERT ... ON CONFLICT DO NOTHING; SQLite: the write lock BEGIN IMMEDIATE takes), so
concurrent JSON merges of one document are applied one after another and none is lost.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.progress.lrs import tables as t
from services.progress.lrs.keys import digest
from services.progress.lrs.validation import Invalid
from shared import db, xapi

JSON = "application/json"


class PreconditionFailed(Exception):
    """If-Match / If-None-Match not met (HTTP 412)."""


class PreconditionRequired(Exception):
    """A PUT over an existing document without If-Match or If-None-Match (HTTP 409)."""


@dataclass(frozen=True)
class Scope:
    """Which set of documents: a kind plus the activity, agent and registration it is about."""

    kind: str
    activity: str = ""
    agent: str = ""
    registration: str = ""

    @property
    def hash(self) -> str:
        return digest("\0".join((self.kind, self.activity, self.agent, self.registration)))

    def key(self, document_id: str) -> str:
        return digest(f"{self.hash}\0{document_id}")


@dataclass(frozen=True)
class Document:
    content: bytes
    content_type: str
    etag: str
    updated: datetime


def etag_of(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


def _is_json(content_type: str) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == JSON


def get(engine: Engine, scope: Scope, document_id: str) -> Document | None:
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(t.documents).where(t.documents.c.key_hash == scope.key(document_id))).first()
    return None if row is None else Document(bytes(row.content), row.content_type, row.etag, row.updated)


def list_ids(engine: Engine, scope: Scope, since: datetime | None) -> list[str]:
    q = sa.select(t.documents.c.document_id).where(t.documents.c.scope_hash == scope.hash)
    if since is not None:
        q = q.where(t.documents.c.updated > since)
    with db.reading(engine) as conn:
        return list(conn.scalars(q.order_by(t.documents.c.updated, t.documents.c.document_id)))


def _check(current: Document | None, if_match: list[str] | None, if_none_match: list[str] | None) -> None:
    if if_match is not None:
        if current is None or not ("*" in if_match or current.etag in if_match):
            raise PreconditionFailed("If-Match does not match the document")
    if if_none_match is not None and current is not None:
        if "*" in if_none_match or current.etag in if_none_match:
            raise PreconditionFailed("If-None-Match: the document exists")


def _locked(conn: Connection, key: str) -> Document | None:
    row = conn.execute(sa.select(t.documents).where(t.documents.c.key_hash == key).with_for_update()).first()
    return None if row is None else Document(bytes(row.content), row.content_type, row.etag, row.updated)


def write(engine: Engine, scope: Scope, document_id: str, content: bytes, content_type: str, *, merge: bool,
          if_match: list[str] | None, if_none_match: list[str] | None, require_precondition: bool,
          precondition_always: bool = False) -> str:
    """PUT (replace) or POST (merge JSON objects); returns the new ETag."""
    if merge and _is_json(content_type):
        try:
            incoming = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise Invalid("the document is not valid JSON") from None
        if not isinstance(incoming, dict):
            raise Invalid("a POSTed JSON document must be an object to merge")
        if xapi.too_deep(incoming):  # the merge serialises it again (shared.xapi.MAX_DEPTH)
            raise Invalid(f"the document nests more than {xapi.MAX_DEPTH} objects or arrays deep")
    key = scope.key(document_id)
    now = xapi.utc_now()
    with engine.begin() as conn:
        current = _locked(conn, key)
        _check(current, if_match, if_none_match)
        if require_precondition and if_match is None and if_none_match is None:
            if current is not None:
                raise PreconditionRequired("the document exists: send If-Match or If-None-Match to replace it")
            if precondition_always:  # xAPI 1.0.3 profiles: a PUT always states its precondition
                raise Invalid("send If-Match or If-None-Match with a PUT of a profile document")
        if current is not None and merge:
            if not (_is_json(content_type) and _is_json(current.content_type)):
                raise Invalid("only JSON documents can be merged by POST")
            try:  # a PUT stores any bytes: the stored document may be anything
                stored = orjson.loads(current.content)
            except orjson.JSONDecodeError:
                raise Invalid("the stored document is not JSON that can be merged") from None
            if not isinstance(stored, dict) or xapi.too_deep(stored):
                raise Invalid(f"the stored document is not a JSON object of at most {xapi.MAX_DEPTH} levels")
            content = orjson.dumps({**stored, **incoming})
            content_type = JSON
        etag = etag_of(content)
        row = {"key_hash": key, "scope_hash": scope.hash, "document_id": document_id,
               "content_type": content_type or "application/octet-stream", "content": content,
               "etag": etag, "updated": now}
        if current is None:
            if not db.insert_if_absent(conn, t.documents, row, ["key_hash"]):
                raise _Retry
        else:
            conn.execute(t.documents.update().where(t.documents.c.key_hash == key).values(**row))
    return etag


class _Retry(Exception):
    """Another writer created the document between our read and our insert."""


def write_retrying(engine: Engine, *args, **kwargs) -> str:
    for _ in range(5):
        try:
            return write(engine, *args, **kwargs)
        except _Retry:
            continue
    return write(engine, *args, **kwargs)


def delete(engine: Engine, scope: Scope, document_id: str | None, *, if_match: list[str] | None,
           if_none_match: list[str] | None) -> None:
    with engine.begin() as conn:
        if document_id is None:
            conn.execute(t.documents.delete().where(t.documents.c.scope_hash == scope.hash))
            return
        key = scope.key(document_id)
        _check(_locked(conn, key), if_match, if_none_match)
        conn.execute(t.documents.delete().where(t.documents.c.key_hash == key))
