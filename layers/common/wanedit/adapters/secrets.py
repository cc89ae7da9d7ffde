"""The API key, read from Secrets Manager through Powertools Parameters (cached between calls)."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters

# Five minutes: a rotated key is picked up soon, and a warm function does not call Secrets Manager
# on every invocation.
SECRET_MAX_AGE_SECONDS = 300


def api_key_from_secret(secret_id: str) -> str:
    """The key: the secret's plain string, or its "api_key" field when it holds JSON."""
    raw = str(parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_SECONDS))
    if raw.lstrip().startswith("{"):
        return str(json.loads(raw)["api_key"])
    return raw.strip()
