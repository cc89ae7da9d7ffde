"""Synchronous request-body validation of the create call, as the service does it before a task exists.

Unknown keys are ignored (the service does; the official SDK itself sends ``input.extend_prompt``).
Over-long ``prompt``/``negative_prompt`` are truncated silently (the reference says so); ``orig_prompt``
reports the prompt as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The reference's limits, defined once for the pipeline and the emulator alike.
from wanedit.domain.limits import (
    AUDIO_SETTINGS,
    MAX_NEGATIVE_PROMPT_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MODEL,
    RATIOS,
    RESOLUTIONS,
)

IMAGE_DATA_PREFIXES = (
    "data:image/jpeg;",
    "data:image/jpg;",
    "data:image/png;",
    "data:image/bmp;",
    "data:image/webp;",
)


class BadRequest(Exception):
    def __init__(self, message: str, code: str = "InvalidParameter") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class CreateRequest:
    model: str
    prompt: str | None  # as given (orig_prompt)
    prompt_used: str  # truncated to MAX_PROMPT_CHARS
    negative_prompt: str | None
    media: list[dict[str, str]]
    params: dict[str, Any] = field(default_factory=dict)  # normalized, defaults filled


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_create(body: Any) -> CreateRequest:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model")
    if model is None or model == "":
        raise BadRequest("Field required: model.")
    if not isinstance(model, str):
        raise BadRequest("The field 'model' must be a string.")
    if model != MODEL:
        raise BadRequest(f"Model not exist. The field 'model' ({model!r}) must be '{MODEL}'.")
    inp = body.get("input")
    if inp is None:
        raise BadRequest("Field required: input.")
    if not isinstance(inp, dict):
        raise BadRequest("The field 'input' must be an object.")
    prompt = inp.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise BadRequest("The field 'input.prompt' must be a string.")
    negative = inp.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise BadRequest("The field 'input.negative_prompt' must be a string.")
    media = inp.get("media")
    if media is None:
        raise BadRequest("Field required: input.media.")
    if not isinstance(media, list) or not media:
        raise BadRequest("The field 'input.media' must be a non-empty array.")
    videos = 0
    images = 0
    clean: list[dict[str, str]] = []
    for i, item in enumerate(media):
        where = f"input.media[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"The field '{where}' must be an object with 'type' and 'url'.")
        mtype = item.get("type")
        if mtype not in ("video", "reference_image"):
            raise BadRequest(
                f"The field '{where}.type' must be one of 'video', 'reference_image', got {mtype!r}."
            )
        url = item.get("url")
        if not isinstance(url, str) or not url.strip():
            raise BadRequest(f"Field required: {where}.url.")
        low = url.lower()
        if mtype == "video":
            videos += 1
            if not low.startswith(("http://", "https://")):
                raise BadRequest(f"The field '{where}.url' must be an HTTP or HTTPS URL of the video.")
        else:
            images += 1
            if low.startswith("data:"):
                if not low.startswith(IMAGE_DATA_PREFIXES) or ";base64," not in low:
                    raise BadRequest(
                        f"The field '{where}.url' must be data:{{MIME_type}};base64,{{base64_data}} with an "
                        "image MIME type of image/jpeg, image/png, image/bmp or image/webp."
                    )
            elif not low.startswith(("http://", "https://")):
                raise BadRequest(
                    f"The field '{where}.url' must be an HTTP or HTTPS URL or a base64 data URI."
                )
        clean.append({"type": mtype, "url": url})
    if videos != 1:
        raise BadRequest(f"The field 'input.media' must contain exactly one video, got {videos}.")
    if images > 4:
        raise BadRequest(f"The field 'input.media' allows at most 4 reference_image items, got {images}.")

    params_in = body.get("parameters")
    if params_in is None:
        params_in = {}
    if not isinstance(params_in, dict):
        raise BadRequest("The field 'parameters' must be an object.")
    p: dict[str, Any] = {
        "resolution": "1080P",
        "ratio": None,
        "duration": 0,
        "audio_setting": "auto",
        "prompt_extend": True,
        "watermark": False,
        "seed": None,
    }
    if "resolution" in params_in:
        v = params_in["resolution"]
        if v not in RESOLUTIONS:
            raise BadRequest(f"The field 'parameters.resolution' must be one of 720P, 1080P, got {v!r}.")
        p["resolution"] = v
    if params_in.get("ratio") is not None:
        v = params_in["ratio"]
        if v not in RATIOS:
            raise BadRequest(f"The field 'parameters.ratio' must be one of {', '.join(RATIOS)}, got {v!r}.")
        p["ratio"] = v
    if params_in.get("duration") is not None:
        v = params_in["duration"]
        if not _is_int(v) or not (v == 0 or 2 <= v <= 10):
            raise BadRequest(
                f"The field 'parameters.duration' must be an integer in [2, 10] (or 0), got {v!r}."
            )
        p["duration"] = v
    if params_in.get("audio_setting") is not None:
        v = params_in["audio_setting"]
        if v not in AUDIO_SETTINGS:
            raise BadRequest(f"The field 'parameters.audio_setting' must be one of auto, origin, got {v!r}.")
        p["audio_setting"] = v
    for flag in ("prompt_extend", "watermark"):
        if params_in.get(flag) is not None:
            v = params_in[flag]
            if not isinstance(v, bool):
                raise BadRequest(f"The field 'parameters.{flag}' must be a boolean, got {v!r}.")
            p[flag] = v
    if params_in.get("seed") is not None:
        v = params_in["seed"]
        if not _is_int(v) or not 0 <= v <= MAX_SEED:
            raise BadRequest(f"The field 'parameters.seed' must be an integer in [0, {MAX_SEED}], got {v!r}.")
        p["seed"] = v
    return CreateRequest(
        model=model,
        prompt=prompt,
        prompt_used=(prompt or "")[:MAX_PROMPT_CHARS],
        negative_prompt=negative[:MAX_NEGATIVE_PROMPT_CHARS] if negative else negative,
        media=clean,
        params=p,
    )
