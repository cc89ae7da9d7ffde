"""One thing wrong with a request, said so that a person can fix it.

A `Problem` names the field (``video.duration``, ``sidecar.ratio``, ``reference_images[2].format``),
what was seen, the API's limit in words and the fix in plain words. It is the unit of every rejection
report (``failed/<path>/<stem>.json``) and is meant to carry API failures later too (field ``api``).

``value`` is always JSON-safe and short: long strings are cut, and a ``data:`` URI never carries its
base64 payload (a report must not copy a 700 KB image, nor leak it into logs).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

MAX_VALUE_CHARS = 120
"""Strings longer than this are cut in `Problem.value` (the report says how long they were)."""


def safe_value(value: Any, *, _depth: int = 0) -> Any:
    """`value` made JSON-safe and short enough for a report and a log line."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _short_str(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if _depth >= 3:
        return "…"
    if isinstance(value, list | tuple):
        items = [safe_value(v, _depth=_depth + 1) for v in value[:10]]
        return items + ([f"… ({len(value)} items)"] if len(value) > 10 else [])
    if isinstance(value, dict):
        pairs = list(value.items())[:10]
        out = {_short_str(str(k)): safe_value(v, _depth=_depth + 1) for k, v in pairs}
        if len(value) > 10:
            out["…"] = f"{len(value)} keys"
        return out
    return _short_str(repr(value))


def _short_str(text: str) -> str:
    if text[:5].lower() == "data:":
        head, comma, payload = text.partition(",")
        if comma:
            return f"{_cut(head, 60)},… ({len(payload)} characters of data)"
    return _cut(text, MAX_VALUE_CHARS)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


class Problem(BaseModel):
    """Field, value seen, the limit (in words), and how to fix it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    value: Any = None
    limit: str
    fix: str

    @field_validator("value", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        return safe_value(value)

    def to_json(self) -> dict[str, Any]:
        """The JSON-safe dict written into reports and events."""
        return self.model_dump(mode="json")

    def __str__(self) -> str:
        return f"{self.field}: {self.fix}"
