"""The accounts' commands (shared.accounts): each one changes an account and publishes
its new state (`account.changed`, to learnstream.accounts.v1) in one unit of work, so
every service's copy follows (docs/accounts.md). A new or rotated secret is returned
once and never stored in clear."""
from __future__ import annotations

from collections.abc import Callable

from services.enrollment.repository import AccountRepository
from shared import accounts, xapi
from shared.accounts import Account
from shared.errors import Conflict
from shared.unit_of_work import UnitOfWork


class AccountCommands:
    def __init__(self, new_uow: Callable[[], UnitOfWork[AccountRepository]], clock=xapi.utc_now,
                 new_key: Callable[[], str] = accounts.new_key, new_secret: Callable[[], str] = accounts.new_secret):
        self.new_uow = new_uow
        self.clock = clock
        self.new_key = new_key
        self.new_secret = new_secret

    def create(self, data: dict, by: str) -> tuple[Account, str]:
        """A new account; returns it and its secret (shown once)."""
        key = data.get("key") or self.new_key()
        secret = self.new_secret()
        account = accounts.new_account(
            key, data.get("display_name") or key, secret, by, self.clock(), role=data["role"],
            units=data.get("units"), cohorts=data.get("cohorts"), scopes=data.get("scopes"),
            locale=data.get("locale"))
        with self.new_uow() as uow:
            if uow.repo.exists(key):
                raise Conflict("an account with this key exists", "key")
            self._save(uow, account)
        return account, secret

    def change(self, key: str, changes: dict, by: str) -> Account:
        """Change role, units, cohorts, scopes, display name or locale."""
        with self.new_uow() as uow:
            account = accounts.changed(uow.repo.get(key), by, self.clock(), **changes)
            self._save(uow, account)
        return account

    def rotate_secret(self, key: str, by: str) -> tuple[Account, str]:
        """A new secret for the account (the old one stops working); shown once."""
        secret = self.new_secret()
        secret_hash = accounts.hash_secret(secret)  # before the transaction: scrypt takes a while
        with self.new_uow() as uow:
            account = accounts.changed(uow.repo.get(key), by, self.clock(), secret_hash=secret_hash)
            self._save(uow, account)
        return account, secret

    def disable(self, key: str, by: str) -> Account:
        """The key stops working everywhere (for good: a new account gets a new key)."""
        with self.new_uow() as uow:
            account = accounts.changed(uow.repo.get(key), by, self.clock(), disabled=True)
            self._save(uow, account)
        return account

    @staticmethod
    def _save(uow: UnitOfWork[AccountRepository], account: Account) -> None:
        uow.repo.save(account)
        uow.publish(accounts.account_changed(account))
        uow.commit()
