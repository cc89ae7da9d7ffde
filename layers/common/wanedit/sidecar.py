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

import json
import sys
from typing import Annotated, Any, Literal

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
from wanedit.references import (
    REFERENCE_LIMIT,
    Reference,
    classify_reference,
)
from wanedit.sidecar_document import SidecarError, load_document
from wanedit.sidecar_problems import problem_from_error

API_PARAMETERS = tuple(EditParameters.model_fields)
"""Sidecar fields that go into the API's ``parameters`` object, under the same names."""


def _choices(values: tuple[str, ...]) -> str:
    quoted = [f'"{value}"' for value in values]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


LIMITS: dict[str, str] = {
    "prompt": f"required, 1-{MAX_PROMPT_CHARS} characters",
    "negative_prompt": f"at most {MAX_NEGATIVE_PROMPT_CHARS} characters",
    "reference_images": REFERENCE_LIMIT,
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


def parse_sidecar(raw: bytes) -> Sidecar:
    """Bytes of a sidecar → `Sidecar`, or `SidecarError` listing all problems found."""
    data, problems = load_document(raw)
    return sidecar_from_document(data, problems)


def sidecar_from_document(data: dict[str, Any], problems: list[Problem] | None = None) -> Sidecar:
    """A JSON object → `Sidecar`, or `SidecarError` with every problem (plus those already found)."""
    problems = list(problems or [])
    try:
        sidecar = Sidecar.model_validate(data)
    except ValidationError as exc:
        problems += [problem_from_error(err, LIMITS) for err in exc.errors()]
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
