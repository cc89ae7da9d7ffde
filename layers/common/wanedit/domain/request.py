"""What a job asks of the API, as validated: parameters, reference images, and where each field came from.

A job record keeps this rather than the sidecar's text: inputs are pinned to the object versions
that were validated, and ``data:`` images (too big for a DynamoDB item) are kept as a pointer to
the JSON path of the file version that holds them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from wanedit.domain.limits import (
    MAX_SEED,
    AudioSetting,
    Ratio,
    Resolution,
    duration_allowed,
)


def _check_duration(value: int | None) -> int | None:
    if value is not None and not duration_allowed(value):
        raise ValueError("duration must be 0 (keep the input's length) or 2-10 seconds")
    return value


class EditParameters(BaseModel):
    """The API's ``parameters`` object. Only what is set is sent: the service defaults the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    resolution: Resolution | None = None
    ratio: Ratio | None = None
    duration: Annotated[int | None, AfterValidator(_check_duration)] = None
    audio_setting: AudioSetting | None = None
    prompt_extend: bool | None = None
    watermark: bool | None = None
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class BucketImage(_Part):
    """A reference image in this bucket, pinned to the version that was validated."""

    kind: Literal["bucket"] = "bucket"
    key: str
    version_id: str | None = None


class UrlImage(_Part):
    """A public https URL, handed to the API as it is (never fetched by wanedit's functions)."""

    kind: Literal["url"] = "url"
    url: str


class InlineImage(_Part):
    """A ``data:`` URI, read back at submission from the JSON path of the file version holding it."""

    kind: Literal["inline"] = "inline"
    key: str
    version_id: str | None = None
    path: tuple[str | int, ...]
    mime: str
    chars: int  # base64 characters of the payload


StoredImage = Annotated[BucketImage | UrlImage | InlineImage, Field(discriminator="kind")]


def public_name(image: BucketImage | UrlImage | InlineImage) -> str:
    """How manifests name an image: its key, its URL, or a description of the inline data."""
    if isinstance(image, BucketImage):
        return image.key
    if isinstance(image, UrlImage):
        return image.url
    return f"data:{image.mime} (inline, {image.chars} base64 chars)"


class FieldOrigin(_Part):
    """Which file set a field (and which of its ``edits``, if one), or why wanedit set it itself."""

    key: str | None = None
    edit: int | None = None
    note: str | None = None  # set when wanedit chose the value (key is then None)

    @classmethod
    def of(cls, text: str) -> FieldOrigin:
        """Parse the text form (``str(origin)``): how manifests show it and older job records stored it."""
        if text.startswith(WANEDIT_ORIGIN):
            return cls(note=text[len(WANEDIT_ORIGIN) :])
        match = _EDIT_SUFFIX.search(text)
        if match:
            return cls(key=text[: match.start()], edit=int(match.group(1)))
        return cls(key=text)

    def __str__(self) -> str:
        if self.key is None:
            return f"{WANEDIT_ORIGIN}{self.note or ''}"
        return self.key if self.edit is None else f"{self.key}#edits[{self.edit}]"


WANEDIT_ORIGIN = "wanedit: "
_EDIT_SUFFIX = re.compile(r"#edits\[(\d+)\]$")


class EditRequest(_Part):
    """Everything of a job's create call but the prompt and the presigned URLs (made at submission)."""

    parameters: EditParameters = Field(default_factory=EditParameters)
    negative_prompt: str | None = None
    images: tuple[StoredImage, ...] = ()
    origins: dict[str, FieldOrigin] = Field(default_factory=dict)

    @property
    def public_images(self) -> list[str]:
        return [public_name(image) for image in self.images]

    def public_origins(self) -> dict[str, str]:
        return {name: str(origin) for name, origin in self.origins.items()}

    @model_validator(mode="before")
    @classmethod
    def _from_stored_dict(cls, data: Any) -> Any:
        """Job records written before this model kept images as three dict shapes and origins as text."""
        if not isinstance(data, dict) or ("reference_images" not in data and not _text_origins(data)):
            return data
        legacy = dict(data)
        public = legacy.pop("reference_images_public", [])
        images = legacy.pop("reference_images", [])
        if images:
            names = [*public, *[""] * len(images)]
            legacy["images"] = [_legacy_image(image, names[index]) for index, image in enumerate(images)]
        legacy["origins"] = {
            name: FieldOrigin.of(origin) if isinstance(origin, str) else origin
            for name, origin in legacy.get("origins", {}).items()
        }
        return legacy


def _text_origins(data: dict[str, Any]) -> bool:
    return any(isinstance(origin, str) for origin in data.get("origins", {}).values())


_INLINE_PUBLIC = re.compile(r"data:(?P<mime>[^ ]*) \(inline, (?P<chars>\d+) base64 chars\)")


def _legacy_image(image: dict[str, Any], public: str) -> dict[str, Any]:
    if "key" in image:
        return {"kind": "bucket", **image}
    if "url" in image:
        return {"kind": "url", **image}
    where = image["data_from"]
    described = _INLINE_PUBLIC.fullmatch(public)
    return {
        "kind": "inline",
        "key": where["key"],
        "version_id": where.get("version_id"),
        "path": tuple(where["path"]),
        "mime": described["mime"] if described else "image/*",
        "chars": int(described["chars"]) if described else 0,
    }
