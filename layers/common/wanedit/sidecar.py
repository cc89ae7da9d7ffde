"""The sidecar: the JSON file beside a video that says how to edit it.

``incoming/<path>/<stem>.json`` holds the prompt and the API's ``parameters``, named exactly as in the
API reference, so a user can copy them from its examples. Every limit of the reference is enforced here
or in `wanedit.validation`, before any call, so a bad request costs the user a report, not a task.

Decisions:
- Lengths are Python ``len`` (Unicode code points): the API counts "each Chinese character or English
  letter as one character", and a code point is the closest match (one emoji = 1, though a flag or a
  skin-tone sequence is 2 or more). Over-long prompts are refused rather than left to the API, which would
  cut them silently.
- Types are strict, as JSON writes them: ``"5"``, ``5.0`` and ``true`` are not the integer ``5``; ``"true"``
  is not ``true``. A sidecar is written once and read by a machine; guessing hides mistakes.
- ``prompt`` is required here (the API lets it be omitted) and may not be blank: an edit needs an instruction.
- ``null`` means "not set": the field is left out of the call and the API applies its default.
- Reference images: see `classify_reference`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from wanedit.domain.limits import (
    AUDIO_SETTINGS,
    IMAGE_MIME_TYPES,
    MAX_DURATION,
    MAX_NEGATIVE_PROMPT_CHARS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCE_IMAGES,
    MAX_SEED,
    MIN_DURATION,
    RATIOS,
    RESOLUTIONS,
    AudioSetting,
    Ratio,
    Resolution,
    duration_allowed,
)
from wanedit.domain.request import EditParameters
from wanedit.problems import Problem

MAX_SIDECAR_BYTES = 1_048_576
MAX_NESTING = 8

API_PARAMETERS = tuple(EditParameters.model_fields)
"""Sidecar fields that go into the API's ``parameters`` object, under the same names."""


def _choices(values: tuple[str, ...]) -> str:
    quoted = [f'"{value}"' for value in values]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


LIMITS: dict[str, str] = {
    "prompt": f"required, 1-{MAX_PROMPT_CHARS} characters",
    "negative_prompt": f"at most {MAX_NEGATIVE_PROMPT_CHARS} characters",
    "reference_images": f"at most {MAX_REFERENCE_IMAGES}; each a key in this bucket, an https:// URL or a "
    "data:image/... URI",
    "resolution": _choices(RESOLUTIONS),
    "ratio": _choices(RATIOS),
    "duration": f"an integer: 0 (keep the input's length) or {MIN_DURATION}-{MAX_DURATION} seconds",
    "audio_setting": _choices(AUDIO_SETTINGS),
    "prompt_extend": "true or false",
    "watermark": "true or false",
    "seed": f"an integer 0-{MAX_SEED}",
    "long_clip": '"reject" (the default) or "split"',
    "dry_run": "true or false",
}


# --------------------------------------------------------------------------- reference images


@dataclass(frozen=True)
class BucketKeyRef:
    """A key in the sidecar's bucket, as written (resolve it with `wanedit.validation.resolve_key`)."""

    key: str


@dataclass(frozen=True)
class HttpsUrlRef:
    """A public https URL: handed to the API as is, never fetched by us (no SSRF from our functions)."""

    url: str


@dataclass(frozen=True)
class DataUriRef:
    """An inline ``data:<mime>;base64,<payload>`` image; the payload is checked in `wanedit.validation`."""

    mime: str
    payload: str


Reference = BucketKeyRef | HttpsUrlRef | DataUriRef

_DATA_URI = re.compile(r"data:([^;,]*);base64,")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)


def _reference_error(fix: str) -> PydanticCustomError:
    return PydanticCustomError("reference", "{fix}", {"fix": fix, "limit": LIMITS["reference_images"]})


def classify_reference(ref: str) -> Reference:
    """What a ``reference_images`` entry is; raises `PydanticCustomError` (with a fix) if unusable.

    - ``data:image/...;base64,...`` → `DataUriRef` (MIME one of the API's four, written in lower case).
    - ``https://host/...`` → `HttpsUrlRef`: a host, no user:password, not localhost or a private,
      loopback, link-local or otherwise non-public IP literal (the API cannot reach those anyway).
    - no scheme → `BucketKeyRef`: a key in the same bucket. A key starting with the incoming prefix
      (``incoming/refs/jacket.png``) is used as is; any other (``jacket.png``, ``refs/jacket.png``,
      ``./jacket.png``) is relative to the sidecar's folder. Either way it stays under ``incoming/``.
    - ``http://`` (the API takes it, but it can be read and altered in transit) and every other
      ``scheme://`` (``s3://``, ``ftp://``, ``file://``) are refused.
    """
    if ref != ref.strip() or not ref:
        raise _reference_error("remove the spaces around the reference" if ref else "remove the empty entry")
    if ref[:5].lower() == "data:":
        return _classify_data_uri(ref)
    scheme, sep, _ = ref.partition("://")
    if not sep:
        return BucketKeyRef(ref)
    name = scheme.lower()
    if name == "https":
        return _classify_https(ref)
    if name == "http":
        raise _reference_error("use an https:// URL: plain http:// can be read and altered in transit")
    if name == "s3":
        raise _reference_error("write the key without s3://bucket/ (images must be in this bucket)")
    raise _reference_error(
        f"{scheme}:// references are not supported; use a key in this bucket, an https:// URL or a data: URI"
    )


def _classify_data_uri(ref: str) -> DataUriRef:
    match = _DATA_URI.match(ref)
    if match is None:
        raise _reference_error("write inline images exactly as data:image/png;base64,<base64 of the file>")
    mime = match.group(1)
    if mime not in IMAGE_MIME_TYPES:
        lowered = mime.strip().lower()
        hint = "image/jpeg" if lowered in ("image/jpg", "image/pjpeg") else None
        hint = hint or (lowered if lowered in IMAGE_MIME_TYPES else None)
        fix = f'write the MIME type as "{hint}"' if hint else f"use one of {', '.join(IMAGE_MIME_TYPES)}"
        raise _reference_error(f'data: URI MIME type "{mime}" is not accepted by the API; {fix}')
    payload = ref[match.end() :]
    if not payload:
        raise _reference_error("the data: URI has no data after the comma")
    return DataUriRef(mime=mime, payload=payload)


def _classify_https(ref: str) -> HttpsUrlRef:
    try:
        parts = urlsplit(ref)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise _reference_error(f"the URL is malformed ({exc}); check the host and port") from None
    if not host:
        raise _reference_error("the URL has no host; write https://host/path/image.png")
    if parts.username is not None or parts.password is not None:
        raise _reference_error("remove the user:password@ part; use a presigned or public URL instead")
    if host == "localhost" or host.endswith(".localhost"):
        raise _reference_error("localhost is not reachable by the API; use a public https:// URL")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.match(host):
            raise _reference_error("write the host as a name or a dotted IPv4 address") from None
        return HttpsUrlRef(ref)
    if not address.is_global or address.is_multicast:
        raise _reference_error(
            f"{host} is a private, loopback or reserved address; use a public https:// URL"
        )
    return HttpsUrlRef(ref)


def _check_reference(ref: str) -> str:
    classify_reference(ref)
    return ref


def _check_duration(value: int) -> int:
    if duration_allowed(value):
        return value
    raise PydanticCustomError(
        "duration_range",
        "{fix}",
        {
            "limit": LIMITS["duration"],
            "fix": f"duration is {value}; use 2-10 to cut the output to that many seconds, "
            "or 0 (or leave it out) to keep the input's length",
        },
    )


def _check_not_blank(value: str) -> str:
    if value and not value.strip():
        raise PydanticCustomError(
            "blank",
            "{fix}",
            {"limit": LIMITS["prompt"], "fix": "prompt is only whitespace; describe the edit"},
        )
    return value


# --------------------------------------------------------------------------- the model


class Sidecar(BaseModel):
    """A validated sidecar. Field names are the API's own (``input`` text and ``parameters``)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        defer_build=True,
        title="wanedit sidecar",
        json_schema_extra={
            "description": "What to do with the video beside this file: the prompt and the parameters of "
            "Alibaba Model Studio's wan2.7-videoedit, named as in its API reference."
        },
    )

    prompt: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
            description=f"The edit to make, in Chinese or English; 1-{MAX_PROMPT_CHARS} characters "
            "(each Chinese character, "
            "letter or emoji counts as one).",
        ),
        AfterValidator(_check_not_blank),
    ]
    negative_prompt: str | None = Field(
        default=None,
        max_length=MAX_NEGATIVE_PROMPT_CHARS,
        description=f"What to keep out of the video; at most {MAX_NEGATIVE_PROMPT_CHARS} characters.",
    )
    reference_images: list[Annotated[str, AfterValidator(_check_reference)]] = Field(
        default_factory=list,
        max_length=MAX_REFERENCE_IMAGES,
        description="Up to 4 reference images (JPEG, PNG without transparency, BMP or WEBP; "
        "240-8000 px a side; aspect 1:8 to 8:1; at most 20 MB). Each is a key in this bucket "
        "('incoming/refs/jacket.png', or "
        "'jacket.png' relative to this file's folder), an https:// URL, or 'data:image/png;base64,...'.",
    )
    resolution: Resolution | None = Field(
        default=None, description="Output resolution tier; the API's default is 1080P."
    )
    ratio: Ratio | None = Field(
        default=None, description="Output aspect ratio; when left out, close to the input video's."
    )
    duration: (
        Annotated[
            StrictInt,
            AfterValidator(_check_duration),
            WithJsonSchema(
                {
                    "type": "integer",
                    "anyOf": [{"const": 0}, {"minimum": MIN_DURATION, "maximum": MAX_DURATION}],
                }
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Cut the output to its first N seconds (2-10); 0 or left out keeps the input's length. "
        "It cannot lengthen a video, and the input itself must still be 2-10 s.",
    )
    audio_setting: AudioSetting | None = Field(
        default=None,
        description="'auto' (the API's default) lets the model decide the sound; "
        "'origin' keeps the input's audio.",
    )
    prompt_extend: StrictBool | None = Field(
        default=None, description="Let a model rewrite the prompt (API default true; slower, often better)."
    )
    watermark: StrictBool | None = Field(
        default=None, description="Add the 'AI Generated' watermark, lower right (API default false)."
    )
    seed: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description=f"Random seed, 0-{MAX_SEED}, for more repeatable results.",
    )

    long_clip: Literal["reject", "split"] | None = Field(
        default=None,
        description="What to do with a clip longer than the API's 10 s: 'reject' (the default) reports "
        "it; 'split' edits it in 2-10 s segments (one task each, same prompt, images, parameters and "
        "seed) and stitches them back into one video with the clip's audio. Not sent to the API.",
    )
    dry_run: StrictBool | None = Field(
        default=None,
        description="true: validate everything and write what would be sent, its billed seconds and "
        "price to edited/<path>/<stem>.estimate.json, creating no task. Not sent to the API.",
    )

    @property
    def splits_long_clips(self) -> bool:
        return self.long_clip == "split"

    def api_parameters(self) -> EditParameters:
        """The API's ``parameters`` object: only what the sidecar set, so the API applies its defaults."""
        return EditParameters(**{name: getattr(self, name) for name in API_PARAMETERS})

    def references(self) -> list[Reference]:
        """The reference images, classified (they were validated when the model was built)."""
        return [classify_reference(ref) for ref in self.reference_images]


# --------------------------------------------------------------------------- parsing bytes


class SidecarError(ValueError):
    """The sidecar cannot be used; ``problems`` says every reason found, each with a fix."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def sidecar_size_problem(size: int) -> Problem:
    """The problem of a sidecar over the size cap (also used before reading one that big)."""
    return _whole(
        f"{size} bytes",
        "at most 1 MB (1,048,576 bytes)",
        f"the sidecar is {size:,} bytes; keep it under 1 MB — put large "
        "reference images in the bucket and name their keys instead of data: URIs",
    )


def parse_sidecar(raw: bytes) -> Sidecar:
    """Bytes of a sidecar → `Sidecar`, or `SidecarError` listing all problems found."""
    data, problems = load_document(raw)
    return sidecar_from_document(data, problems)


def load_document(raw: bytes) -> tuple[dict[str, Any], list[Problem]]:
    """Bytes of a sidecar (or folder defaults) → its JSON object, and problems found on the way.

    Safe on hostile input: the size is capped before decoding, and nesting depth is measured before
    ``json.loads`` (which would recurse until RecursionError on ``[[[[...``). Unusable bytes raise
    `SidecarError`; duplicate keys come back as problems beside the object.
    """
    if len(raw) > MAX_SIDECAR_BYTES:
        raise SidecarError([sidecar_size_problem(len(raw))])
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if bom else 0)
        raise SidecarError(
            [
                _whole(
                    f"byte 0x{raw[offset]:02x} at offset {offset}",
                    "UTF-8 JSON",
                    f"the file is not UTF-8 (bad byte at offset {offset}); save it as UTF-8",
                )
            ]
        ) from None
    depth = _nesting_depth(text)
    if depth > MAX_NESTING:
        raise SidecarError(
            [
                _whole(
                    f"nested {depth} levels deep",
                    f"at most {MAX_NESTING} levels of nesting",
                    "a sidecar is one flat object (with one list of images); remove the nesting",
                )
            ]
        )
    duplicates: list[str] = []
    try:
        data = json.loads(
            text,
            object_pairs_hook=lambda pairs: _no_duplicates(pairs, duplicates),
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as exc:
        # Python 3.13 names a trailing comma and points at it; 3.11 points at the bracket after it
        # ("Expecting property name..." / "Expecting value"). One wording, at the bracket, on both.
        message, position = exc.msg, exc.pos
        after = text[position + 1 :].lstrip() if exc.msg.startswith("Illegal trailing comma") else ""
        if after[:1] in ("}", "]"):
            position = len(text) - len(after)
        if text[position : position + 1] in ("}", "]") and text[:position].rstrip().endswith(","):
            message = f"a trailing comma before {text[position]}"
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        raise SidecarError(
            [
                _whole(
                    message,
                    "a JSON object",
                    f"the file is not valid JSON: {message} at line {line}, column {column}",
                )
            ]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise SidecarError(
            [_whole(str(exc)[:100], "a JSON object", f"the file is not usable JSON: {exc}")]
        ) from None
    if not isinstance(data, dict):
        raise SidecarError(
            [
                _whole(
                    _json_type(data),
                    "a JSON object",
                    'write one object: {"prompt": "describe the edit", ...}',
                )
            ]
        )
    problems = [
        Problem(
            field=f"sidecar.{key}",
            value=key,
            limit="each field once",
            fix=f'"{key}" appears more than once, so which value counts is ambiguous; keep one',
        )
        for key in dict.fromkeys(duplicates)
    ]
    return data, problems


def sidecar_from_document(data: dict[str, Any], problems: list[Problem] | None = None) -> Sidecar:
    """A JSON object → `Sidecar`, or `SidecarError` with every problem (plus those already found)."""
    problems = list(problems or [])
    try:
        sidecar = Sidecar.model_validate(data)
    except ValidationError as exc:
        problems += [_problem_from_error(err) for err in exc.errors()]
        if any(err["type"] == "too_long" and err["loc"] == ("reference_images",) for err in exc.errors()):
            problems += _reference_problems(data["reference_images"])
        raise SidecarError(problems) from None
    if problems:
        raise SidecarError(problems)
    return sidecar


def _reference_problems(refs: list[Any]) -> list[Problem]:
    """Problems of each entry, which pydantic skips once the list is too long (we report all at once)."""
    problems = []
    for index, ref in enumerate(refs):
        if not isinstance(ref, str):
            continue
        try:
            classify_reference(ref)
        except PydanticCustomError as exc:
            problems.append(
                Problem(
                    field=f"sidecar.reference_images[{index}]",
                    value=ref,
                    limit=LIMITS["reference_images"],
                    fix=exc.message(),
                )
            )
    return problems


def _whole(value: str, limit: str, fix: str) -> Problem:
    return Problem(field="sidecar", value=value, limit=limit, fix=fix)


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


def _json_type(value: Any) -> str:
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


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "sidecar"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problem_from_error(err: Any) -> Problem:
    """One pydantic error → a `Problem` whose fix names the field, what was seen and what to write."""
    loc: tuple[int | str, ...] = tuple(err["loc"])
    name = str(loc[0]) if loc else "sidecar"
    value = err.get("input")
    ctx = err.get("ctx") or {}
    limit = ctx.get("limit") or LIMITS.get(name, "see the sidecar JSON Schema")
    kind = err["type"]
    if "fix" in ctx:
        fix = ctx["fix"]
    elif kind == "missing":
        value, fix = None, f'add "{name}" ({LIMITS.get(name, "")})'
    elif kind == "extra_forbidden":
        close = difflib.get_close_matches(name, list(LIMITS), n=1)
        hint = f' — did you mean "{close[0]}"?' if close else f"; known fields: {', '.join(LIMITS)}"
        fix, limit = f'"{name}" is not a sidecar field; remove it{hint}', "only the documented fields"
    elif kind in ("string_too_long", "too_long"):
        count, most = len(value), int(ctx.get("max_length", 0))
        unit = "characters" if kind == "string_too_long" else "entries"
        fix = f"{name} has {count} {unit}; the API accepts at most {most} — remove {count - most}"
    elif kind == "string_too_short":
        fix = f"{name} is empty; describe the edit ({LIMITS.get(name, '')})"
    elif kind == "literal_error":
        fix = _literal_fix(name, value, limit)
    elif kind in ("greater_than_equal", "less_than_equal"):
        fix = f"{name} is {value}; use {limit}"
    elif kind == "int_type":
        fix = _int_fix(name, value)
    elif kind == "bool_type":
        bare = (
            f"; write {value.lower()} without quotes"
            if isinstance(value, str) and value.lower() in ("true", "false")
            else "; write true or false"
        )
        fix = f"{name} is {_json_type(value)}{bare}"
    elif kind in ("string_type", "list_type"):
        wanted = "a string" if kind == "string_type" else 'a list, e.g. ["jacket.png"]'
        fix = f"{name} is {_json_type(value)}; write {wanted}"
    elif kind == "model_type":
        fix, name = 'write one object: {"prompt": "describe the edit", ...}', "sidecar"
    else:
        fix = f"{name}: {err['msg']}"
    return Problem(field=_field_path(loc), value=value, limit=limit, fix=fix)


def _literal_fix(name: str, value: Any, limit: str) -> str:
    if isinstance(value, str):
        for option in re.findall(r'"([^"]+)"', limit):
            if option.lower() == value.strip().lower():
                return f'{name} is "{value}"; write it exactly as "{option}"'
        return f'{name} is "{value}"; use {limit}'
    return f"{name} is {_json_type(value)}; use {limit}"


def _int_fix(name: str, value: Any) -> str:
    if isinstance(value, str):
        return f'{name} is "{value}" (a string); write a number without quotes'
    if isinstance(value, float) and value.is_integer():
        return f"{name} is {value}; write {int(value)} (a whole number, no decimal point)"
    if isinstance(value, float):
        return f"{name} is {value}; write a whole number ({LIMITS.get(name, 'an integer')})"
    return f"{name} is {_json_type(value)}; use {LIMITS.get(name, 'an integer')}"


MAX_EDITS = 10
EDIT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a sidecar or `_defaults.json` file, as published in ``schemas/sidecar.schema.json``.

    It is the `Sidecar` model's, plus `edits` (several named edits of one clip, see wanedit.recipe);
    `prompt` is not required of one file, since folder defaults or each edit may carry it (the
    pipeline checks the merged result).
    """
    schema = Sidecar.model_json_schema()
    fields = dict(schema["properties"])
    name = {
        "type": "string",
        "pattern": EDIT_NAME_PATTERN,
        "description": "The edit's name; its output is edited/<path>/<stem>.<name>.mp4.",
    }
    schema["properties"]["edits"] = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_EDITS,
        "description": "Several edits of the clip, one job each: the fields above are shared, each edit "
        "overrides them with its own.",
        "items": {
            "type": "object",
            "properties": {"name": name, **fields},
            "required": ["name"],
            "additionalProperties": False,
        },
    }
    schema["required"] = []
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


SCHEMA_ID = "urn:wanedit:schemas:sidecar:v1"


if __name__ == "__main__":
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m wanedit.sidecar --schema > schemas/sidecar.schema.json")
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
