"""Secrets sealed at rest (shared.secrets): what the database holds gives nothing away,
keys rotate, and a missing key is named rather than guessed around."""
from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from shared.secrets import SEALED, SecretBox, SecretUnreadable, keys_from


def test_a_sealed_secret_opens_to_itself_and_shows_nothing_of_it():
    box = SecretBox([Fernet.generate_key().decode()])
    sealed = box.seal("s3cret-ü")
    assert sealed.startswith(SEALED) and "s3cret" not in sealed
    assert box.open(sealed) == "s3cret-ü"
    assert box.seal("") == "" and box.open("") == ""  # no secret stays no secret


def test_rotation_new_key_first_old_values_still_open_and_reseal_with_the_new_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = SecretBox([old]).seal("pw")
    rotated = SecretBox([new, old])
    assert rotated.open(sealed_before) == "pw"
    resealed = rotated.reseal(sealed_before)
    assert SecretBox([new]).open(resealed) == "pw"
    with pytest.raises(SecretUnreadable, match="no configured secret key"):
        SecretBox([new]).open(sealed_before)


def test_a_plain_stored_value_is_refused_not_used():
    with pytest.raises(SecretUnreadable, match="not sealed"):
        SecretBox([Fernet.generate_key().decode()]).open("plain-text")


def test_a_malformed_key_is_named_with_how_to_make_one():
    with pytest.raises(ValueError, match="Fernet key"):
        SecretBox(["not-a-key"])


def test_without_configured_keys_one_is_made_once_readable_by_the_owner_only(tmp_path):
    path = tmp_path / "secrets" / "forwarding.key"
    first = keys_from("", path)
    assert keys_from(" ", path) == first and len(first) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # nothing left aside
    configured = Fernet.generate_key().decode()
    assert keys_from(f"{configured}, ", path) == [configured]
