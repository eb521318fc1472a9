"""Accounts as plain data (shared.accounts) and the permission table (shared.permissions)."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from shared import accounts, permissions, xapi
from shared.accounts import VerifiedSecrets
from shared.errors import Conflict, DomainError

NOW = xapi.utc_now()


def _operator(**extra):
    return accounts.new_account("north", "North office", "s3cret", "admin", NOW, role="agency_operator",
                                units=["Revenue agency"], **extra)


def test_a_secret_is_stored_hashed_and_verified():
    account = _operator()
    assert "s3cret" not in account.secret_hash and account.secret_hash.startswith("scrypt$")
    assert accounts.verify_secret("s3cret", account.secret_hash)
    assert not accounts.verify_secret("s3cret!", account.secret_hash)
    assert not accounts.verify_secret("s3cret", "not-a-hash")


def test_a_verified_pair_costs_one_hmac_and_follows_the_stored_hash():
    verified = VerifiedSecrets()
    stored = accounts.hash_secret("one")
    assert verified.check("k", "one", stored)
    started = time.perf_counter()
    for _ in range(1000):
        assert verified.check("k", "one", stored)
    assert (time.perf_counter() - started) / 1000 < 50e-6
    assert not verified.check("k", "two", stored)
    assert not verified.check("k", "one", accounts.hash_secret("other"))  # rotated
    assert not verified.check("k", "one", None)  # disabled or unknown


@pytest.mark.parametrize("role, limits, field", [
    ("agency_operator", {}, "units"),
    ("auditor", {"units": ["x"]}, "units"),
    ("auditor", {"cohorts": ["c"]}, "cohorts"),
    ("lms_client", {"scopes": ["everything"]}, "scopes"),
    ("root", {}, "role"),
])
def test_an_account_that_breaks_a_rule_is_refused_naming_the_field(role, limits, field):
    with pytest.raises(DomainError) as raised:
        accounts.new_account("k", "name", "s", "admin", NOW, role=role, **limits)
    assert field in raised.value.fields


def test_a_change_is_one_version_more_and_a_new_role_drops_the_old_limits():
    account = _operator()
    auditor = accounts.changed(account, "admin", NOW, role="auditor")
    assert (auditor.role, auditor.units, auditor.version) == ("auditor", None, 2)
    disabled = accounts.changed(auditor, "admin", NOW, disabled=True)
    with pytest.raises(Conflict):
        accounts.changed(disabled, "admin", NOW, display_name="again")


def test_the_statement_carries_the_whole_state_and_reads_back():
    account = accounts.changed(_operator(locale="vi"), "admin", NOW, units=["Revenue agency", "Hà Nội"])
    event = accounts.account_changed(account)
    assert event.type == "account.changed"
    back = accounts.from_statement(event.statement)
    assert replace(back, updated_at=None) == replace(account, updated_at=None)  # the statement keeps milliseconds
    assert abs((back.updated_at - account.updated_at).total_seconds()) < 0.001
    assert "s3cret" not in str(event.statement)


def test_every_role_has_permissions_and_only_the_admin_manages_accounts():
    assert set(permissions.ROLE_PERMISSIONS) == set(accounts.ROLES)
    assert [r for r, p in permissions.ROLE_PERMISSIONS.items() if permissions.MANAGE_ACCOUNTS in p] == [
        "campaign_admin"]
    assert permissions.refusal("enrollment", "campaign_admin", "GET", "/no-such-route") is not None
    assert permissions.refusal("progress", "agency_operator", "HEAD", "/campaign") is None
