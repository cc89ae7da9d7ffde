"""A sidecar's or defaults file's bytes -> its JSON object, safely, with every problem in words.

Safe on hostile input: the size is capped before decoding, and nesting depth is measured before
``json.loads`` (which would recurse until RecursionError on ``[[[[...``). Duplicate keys are not an
error of JSON, but of a sidecar: which value counts would be ambiguous.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wanedit.problems import Problem

MAX_SIDECAR_BYTES = 1_048_576
MAX_NESTING = 8
_BOM = b"\xef\xbb\xbf"


class SidecarError(ValueError):
    """The sidecar cannot be used; ``problems`` says every reason found, each with a fix."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def whole(value: str, limit: str, fix: str) -> Problem:
    """A problem of the file as a whole (not of one of its fields)."""
    return Problem(field="sidecar", value=value, limit=limit, fix=fix)


def sidecar_size_problem(size: int) -> Problem:
    """The problem of a sidecar over the size cap (also used before reading one that big)."""
    return whole(
        f"{size} bytes",
        "at most 1 MB (1,048,576 bytes)",
        f"the sidecar is {size:,} bytes; keep it under 1 MB — put large "
        "reference images in the bucket and name their keys instead of data: URIs",
    )


def load_document(raw: bytes) -> tuple[dict[str, Any], list[Problem]]:
    """Bytes of a sidecar (or folder defaults) → its JSON object, and problems found on the way.

    Unusable bytes raise `SidecarError`; duplicate keys come back as problems beside the object.
    """
    if len(raw) > MAX_SIDECAR_BYTES:
        raise SidecarError([sidecar_size_problem(len(raw))])
    text = _decode(raw)
    depth = _nesting_depth(text)
    if depth > MAX_NESTING:
        raise SidecarError(
            [
                whole(
                    f"nested {depth} levels deep",
                    f"at most {MAX_NESTING} levels of nesting",
                    "a sidecar is one flat object (with one list of images); remove the nesting",
                )
            ]
        )
    duplicates: list[str] = []
    data = _parse(text, duplicates)
    if not isinstance(data, dict):
        raise SidecarError(
            [
                whole(
                    json_type(data), "a JSON object", 'write one object: {"prompt": "describe the edit", ...}'
                )
            ]
        )
    return data, [_duplicate(key) for key in dict.fromkeys(duplicates)]


def _decode(raw: bytes) -> str:
    skip = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        raise SidecarError(
            [
                whole(
                    f"byte 0x{raw[offset]:02x} at offset {offset}",
                    "UTF-8 JSON",
                    f"the file is not UTF-8 (bad byte at offset {offset}); save it as UTF-8",
                )
            ]
        ) from None


def _parse(text: str, duplicates: list[str]) -> Any:
    try:
        return json.loads(
            text,
            object_pairs_hook=lambda pairs: _no_duplicates(pairs, duplicates),
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as exc:
        message, line, column = _where(exc, text)
        raise SidecarError(
            [
                whole(
                    message,
                    "a JSON object",
                    f"the file is not valid JSON: {message} at line {line}, column {column}",
                )
            ]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise SidecarError(
            [whole(str(exc)[:100], "a JSON object", f"the file is not usable JSON: {exc}")]
        ) from None


def _where(exc: json.JSONDecodeError, text: str) -> tuple[str, int, int]:
    """The error in words and where, the same on every Python.

    Python 3.13 names a trailing comma and points at it; 3.11 points at the bracket after it
    ("Expecting property name..." / "Expecting value"). One wording, at the bracket, on both.
    """
    message, position = exc.msg, exc.pos
    after = text[position + 1 :].lstrip() if exc.msg.startswith("Illegal trailing comma") else ""
    if after[:1] in ("}", "]"):
        position = len(text) - len(after)
    if text[position : position + 1] in ("}", "]") and text[:position].rstrip().endswith(","):
        message = f"a trailing comma before {text[position]}"
    line = text.count("\n", 0, position) + 1
    return message, line, position - text.rfind("\n", 0, position)


def _duplicate(key: str) -> Problem:
    return Problem(
        field=f"sidecar.{key}",
        value=key,
        limit="each field once",
        fix=f'"{key}" appears more than once, so which value counts is ambiguous; keep one',
    )


# A string runs to its closing quote or, unterminated, to the end: a match never fails once begun, so
# the scan is one linear pass (retrying failed strings at each quote would be quadratic on '"\\"\\"...').
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


def _nesting_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, in linear time and without recursion."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth = max(depth - 1, 0)
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            duplicates.append(key)
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; write a number")


def json_type(value: Any) -> str:
    """What a JSON value is, in words (for a fix: "watermark is a string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
