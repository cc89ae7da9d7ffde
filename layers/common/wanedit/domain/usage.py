"""`usage`: the billing figures of a task, one model for the API's answer, the job, manifests and events."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from wanedit.domain.limits import Resolution


def _to_int(value: Any) -> Any:
    """``720``, ``"720"``, ``"720P"`` -> 720; ``""`` -> None (SDKs disagree on SR's type)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d+)\s*[pP]?", text)
        if match:
            return int(match.group(1))
        try:
            as_float = float(text)
        except ValueError:
            return value  # let pydantic report it
        return int(as_float) if as_float.is_integer() else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


LooseInt = Annotated[int | None, BeforeValidator(_to_int)]
_SECONDS = ("duration", "input_video_duration", "output_video_duration")


class Usage(BaseModel):
    """The API's billing figures of the task (seconds; duration = input + output; SR is the output tier)."""

    # SR is an int in the HTTP API and "720" in some SDK outputs: both give 720. Fields some SDKs
    # add (video_duration, video_ratio) are kept.
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    duration: float | None = None
    input_video_duration: float | None = None
    output_video_duration: float | None = None
    video_count: LooseInt = None
    SR: LooseInt = None

    @property
    def tier(self) -> Resolution:
        """The resolution tier billed (prices differ by tier)."""
        return "720P" if self.SR == 720 else "1080P"

    def as_dict(self) -> dict[str, Any]:
        """The figures as the API gave them (unset ones left out): manifests and events carry this."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def summed(cls, usages: Iterable[Usage | None]) -> Usage | None:
        """A long clip's usage: seconds and video counts added over its segments, the tier of the first."""
        present = [usage for usage in usages if usage is not None]
        if not present:
            return None
        total = present[0].as_dict()
        for name in _SECONDS:
            values = [getattr(u, name) for u in present if getattr(u, name) is not None]
            if values:
                total[name] = round(sum(values), 6)
        if all(u.video_count is not None for u in present):
            total["video_count"] = sum(u.video_count or 0 for u in present)
        return cls.model_validate(total)
