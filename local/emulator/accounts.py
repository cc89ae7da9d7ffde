"""Accounts: what the service scopes tasks and limits to.

Model Studio scopes tasks, their query, list and cancel, the running cap and the rate limits to the
Alibaba Cloud account that owns the API key: every key, RAM user and workspace of the account shares
them, and a key of another account sees none of them ("You can query all tasks under the Alibaba
Cloud account that owns the current API key ... You cannot query tasks from other accounts"). So
the emulator knows accounts, each with one or more keys.

The identifiers a list entry carries are derived here, stably: ``api_key_id`` per key,
``caller_uid`` per key (the RAM user the key belongs to), ``caller_parent_id`` per account (its
main account's UID).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_ACCOUNT = "default"


def _digits(text: str, n: int) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16))[:n]


def api_key_id(key: str) -> str:
    """The service's numeric id of a key (never the key itself)."""
    return _digits(f"api-key:{key}", 12)


def caller_uid(key: str) -> str:
    """The UID of the (RAM) user a key belongs to: one user per key here."""
    return _digits(f"caller:{key}", 16)


@dataclass(frozen=True)
class Account:
    name: str
    keys: tuple[str, ...]

    @property
    def uid(self) -> str:
        """The main account's UID: ``caller_parent_id`` of every task of the account."""
        return _digits(f"account:{self.name}", 16)

    def workload_key(self) -> str:
        """What stands for the key of "another workload of this account" (never accepted over HTTP)."""
        return f"workload:{self.name}"


class Accounts:
    """Every account the emulator accepts keys of; a key belongs to exactly one."""

    def __init__(
        self, default_keys: Iterable[str], others: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self._by_name: dict[str, Account] = {}
        self._by_key: dict[str, Account] = {}
        default = tuple(default_keys)
        if default:
            self._add(DEFAULT_ACCOUNT, default)
        for name, keys in (others or {}).items():
            self._add(name, tuple(keys))
        if not self._by_name:
            raise ValueError("the emulator needs at least one account with at least one key")

    def _add(self, name: str, keys: tuple[str, ...]) -> None:
        if not name or name in self._by_name:
            raise ValueError(f"account names must be unique and not empty: {name!r}")
        if not keys or not all(keys):
            raise ValueError(f"account {name!r} needs at least one non-empty key")
        account = Account(name, keys)
        for key in keys:
            if key in self._by_key:
                raise ValueError(f"a key belongs to one account only (seen in {self._by_key[key].name!r})")
            self._by_key[key] = account
        self._by_name[name] = account

    @property
    def default(self) -> Account:
        """The ``default`` account (keys given as ``api_key``), else the first one named."""
        return self._by_name.get(DEFAULT_ACCOUNT) or next(iter(self._by_name.values()))

    def of_key(self, key: str) -> Account | None:
        return self._by_key.get(key)

    def get(self, name: str | None) -> Account:
        if name is None:
            return self.default
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no account {name!r}; accounts: {', '.join(self._by_name)}") from None

    def describe(self) -> dict[str, int]:
        """Account name -> number of keys (never the keys)."""
        return {a.name: len(a.keys) for a in self._by_name.values()}


def parse_account_spec(text: str) -> tuple[str, list[str]]:
    """``NAME=KEY[,KEY...]`` (the ``--account`` option) -> (name, keys)."""
    name, sep, keys = text.partition("=")
    parsed = [k.strip() for k in keys.split(",") if k.strip()]
    if not sep or not name.strip() or not parsed:
        raise ValueError(f"--account {text!r}: expected NAME=KEY[,KEY...]")
    return name.strip(), parsed
