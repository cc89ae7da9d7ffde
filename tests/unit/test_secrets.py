"""The API key from its secret: a plain string or the console's key/value JSON, never logged."""

from __future__ import annotations

from typing import Any

import pytest

from wanedit.adapters.secrets import ApiKeyFromSecret


class SecretsStub:
    def __init__(self, value: str) -> None:
        self.value, self.calls = value, 0

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"SecretString": self.value}


@pytest.mark.parametrize(
    "stored",
    [
        "sk-plain-key",
        "  sk-plain-key\n",
        '{"api_key": "sk-plain-key"}',
        ' {"api_key": "sk-plain-key", "note": "x"}',
    ],
)
def test_both_ways_of_storing_the_key_give_the_key(stored: str) -> None:
    assert ApiKeyFromSecret("arn:secret", client=SecretsStub(stored))() == "sk-plain-key"


def test_the_key_is_cached_between_calls_and_absent_from_the_repr() -> None:
    stub = SecretsStub("sk-plain-key")
    key = ApiKeyFromSecret("arn:secret", client=stub)
    assert key() == key() == "sk-plain-key" and stub.calls == 1
    assert "sk-" not in repr(key)
