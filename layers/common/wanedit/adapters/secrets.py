"""The API key, read from Secrets Manager through Powertools Parameters (cached between calls)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.base import transform_value

# Five minutes: a rotated key is picked up soon, and a warm function does not call Secrets Manager
# on every invocation.
SECRET_MAX_AGE_SECONDS = 300


class ApiKeyFromSecret:
    """A callable the API client asks for the key at call time; the value is never stored elsewhere."""

    def __init__(self, secret_id: str, *, client: Any = None) -> None:
        self._secret_id = secret_id
        self._provider = SecretsProvider(boto3_client=client) if client else SecretsProvider()

    def __call__(self) -> str:
        raw = str(self._provider.get(self._secret_id, max_age=SECRET_MAX_AGE_SECONDS))
        # Plain string, or JSON with an "api_key" field (how the console stores key/value secrets).
        # Powertools' transform would refuse the plain string, so the shape decides whether to use it.
        if raw.lstrip().startswith("{"):
            document = transform_value(raw, "json")
            return str(document["api_key"]) if isinstance(document, dict) else ""
        return raw.strip()

    def __repr__(self) -> str:
        return f"ApiKeyFromSecret({self._secret_id!r})"
