"""Secrets a service must store and read back (a forwarding target's password): sealed
with a key the database never holds, so a copy of the database or a backup does not
give the credentials away.

Keys are Fernet keys (AES-128-CBC with HMAC-SHA256, `cryptography`), from the environment
(`<SERVICE>_SECRET_KEYS`, comma-separated: the first seals, every one opens, so a key is
rotated by putting the new one first and re-sealing). Without that setting a key is made
once under var/secrets/ (mode 0600), which suits one machine and a developer's stack;
a deployment gives the key as a secret of its own (README, configuration).
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Stored values carry this mark, so that a migration can tell sealed values from those
# written before sealing existed, and sealing twice is impossible.
SEALED = "fernet:"


class SecretUnreadable(Exception):
    """A sealed value that none of the configured keys opens (a key left out of a rotation)."""


class SecretBox:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("a secret box needs at least one key")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except ValueError:
            raise ValueError("each secret key must be a Fernet key, 32 url-safe base64-encoded bytes: "
                             "python -c 'from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())'") from None

    def seal(self, plain: str) -> str:
        """The stored form; an empty secret stays empty (it means: none)."""
        return SEALED + self._fernet.encrypt(plain.encode()).decode() if plain else ""

    def open(self, stored: str) -> str:
        if not stored:
            return ""
        if not stored.startswith(SEALED):
            raise SecretUnreadable("the stored secret is not sealed (run the migrations)")
        try:
            return self._fernet.decrypt(stored[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("no configured secret key opens the stored secret "
                                   "(was the key that sealed it left out?)") from None

    def reseal(self, stored: str) -> str:
        """Sealed again with the first key (after a rotation), or sealed for the first time."""
        return self.seal(self.open(stored) if stored.startswith(SEALED) else stored)


def keys_from(raw: str, default_file: Path) -> list[str]:
    """The configured keys, or the one kept in `default_file` (made if missing)."""
    keys = [key for key in (k.strip() for k in raw.split(",")) if key]
    return keys or [kept_key(default_file, lambda: Fernet.generate_key().decode())]


def kept_key(path: Path, make) -> str:
    """A development default key, made once by `make()` and kept in `path` (mode 0600),
    so that every process of the machine and a restart use the same one. Written aside,
    then linked into place: two processes starting together end up with one key, and
    neither reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make() + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process won: use its key
        finally:
            aside.unlink()
    return path.read_text().strip()
