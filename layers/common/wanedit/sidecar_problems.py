"""A pydantic validation error of a sidecar -> a `Problem` whose fix names the field, what was seen and
what to write instead (a user reads these in failed/<stem>.json, so each kind gets its own words)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wanedit.problems import Problem
from wanedit.sidecar_document import json_type


@dataclass(frozen=True)
class _Seen:
    """One error, as the fixes need it."""

    name: str  # the top-level field
    value: Any
    limit: str
    ctx: Mapping[str, Any]
    limits: Mapping[str, str]  # every field's limit in words

    def known(self, default: str = "") -> str:
        return self.limits.get(self.name, default)


def problem_from_error(err: Any, limits: Mapping[str, str]) -> Problem:
    """One pydantic error (an item of ``ValidationError.errors()``) → a `Problem`."""
    loc: tuple[int | str, ...] = tuple(err["loc"])
    name = str(loc[0]) if loc else "sidecar"
    ctx = err.get("ctx") or {}
    seen = _Seen(
        name,
        err.get("input"),
        ctx.get("limit") or limits.get(name, "see the sidecar JSON Schema"),
        ctx,
        limits,
    )
    value, limit = seen.value, seen.limit
    if "fix" in ctx:
        fix = ctx["fix"]
    elif err["type"] == "missing":
        value, fix = None, f'add "{name}" ({seen.known()})'
    elif err["type"] == "extra_forbidden":
        fix, limit = _unknown_field(seen), "only the documented fields"
    else:
        fix = _FIXES.get(err["type"], lambda s: f"{s.name}: {err['msg']}")(seen)
    return Problem(field=_field_path(loc), value=value, limit=limit, fix=fix)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "sidecar"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _unknown_field(seen: _Seen) -> str:
    close = difflib.get_close_matches(seen.name, list(seen.limits), n=1)
    hint = f' — did you mean "{close[0]}"?' if close else f"; known fields: {', '.join(seen.limits)}"
    return f'"{seen.name}" is not a sidecar field; remove it{hint}'


def _too_long(unit: str) -> Callable[[_Seen], str]:
    def fix(seen: _Seen) -> str:
        count, most = len(seen.value), int(seen.ctx.get("max_length", 0))
        return f"{seen.name} has {count} {unit}; the API accepts at most {most} — remove {count - most}"

    return fix


def _literal(seen: _Seen) -> str:
    if isinstance(seen.value, str):
        for option in re.findall(r'"([^"]+)"', seen.limit):
            if option.lower() == seen.value.strip().lower():
                return f'{seen.name} is "{seen.value}"; write it exactly as "{option}"'
        return f'{seen.name} is "{seen.value}"; use {seen.limit}'
    return f"{seen.name} is {json_type(seen.value)}; use {seen.limit}"


def _integer(seen: _Seen) -> str:
    name, value = seen.name, seen.value
    if isinstance(value, str):
        return f'{name} is "{value}" (a string); write a number without quotes'
    if isinstance(value, float) and value.is_integer():
        return f"{name} is {value}; write {int(value)} (a whole number, no decimal point)"
    if isinstance(value, float):
        return f"{name} is {value}; write a whole number ({seen.known('an integer')})"
    return f"{name} is {json_type(value)}; use {seen.known('an integer')}"


def _boolean(seen: _Seen) -> str:
    value = seen.value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return f"{seen.name} is {json_type(value)}; write {value.lower()} without quotes"
    return f"{seen.name} is {json_type(value)}; write true or false"


def _wrong_type(wanted: str) -> Callable[[_Seen], str]:
    return lambda seen: f"{seen.name} is {json_type(seen.value)}; write {wanted}"


_FIXES: dict[str, Callable[[_Seen], str]] = {
    "string_too_long": _too_long("characters"),
    "too_long": _too_long("entries"),
    "string_too_short": lambda seen: f"{seen.name} is empty; describe the edit ({seen.known()})",
    "literal_error": _literal,
    "greater_than_equal": lambda seen: f"{seen.name} is {seen.value}; use {seen.limit}",
    "less_than_equal": lambda seen: f"{seen.name} is {seen.value}; use {seen.limit}",
    "int_type": _integer,
    "bool_type": _boolean,
    "string_type": _wrong_type("a string"),
    "list_type": _wrong_type('a list, e.g. ["jacket.png"]'),
    "model_type": lambda seen: 'write one object: {"prompt": "describe the edit", ...}',
}
