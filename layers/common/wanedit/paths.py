"""Where things live in the bucket: one incoming clip maps to one place under edited/ and failed/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VIDEO_EXTENSIONS = (".mp4", ".mov")
SIDECAR_EXTENSION = ".json"
FOLDER_DEFAULTS_NAME = "_defaults.json"

Kind = Literal["video", "sidecar"]


@dataclass(frozen=True)
class Layout:
    """The bucket's prefixes (from settings); keeps key arithmetic in one place."""

    incoming: str = "incoming/"
    edited: str = "edited/"
    failed: str = "failed/"
    work: str = "work/"  # long clips' segments: no trigger listens here, a lifecycle rule expires it

    def classify(self, key: str) -> tuple[Kind, str] | None:
        """('video'|'sidecar', stem path relative to incoming/) for an input key, else None."""
        if not key.startswith(self.incoming):
            return None
        relative = key[len(self.incoming) :]
        lower = relative.lower()
        for ext in VIDEO_EXTENSIONS:
            if lower.endswith(ext) and len(relative) > len(ext):
                return "video", relative[: -len(ext)]
        if lower.endswith(SIDECAR_EXTENSION) and len(relative) > len(SIDECAR_EXTENSION):
            if relative.rsplit("/", 1)[-1] == FOLDER_DEFAULTS_NAME:
                return None
            return "sidecar", relative[: -len(SIDECAR_EXTENSION)]
        return None

    def sidecar_key(self, stem: str) -> str:
        return f"{self.incoming}{stem}{SIDECAR_EXTENSION}"

    def video_candidates(self, stem: str) -> list[str]:
        """Keys a sidecar's video may have (lower- and upper-case extensions, as cameras write both)."""
        return [f"{self.incoming}{stem}{ext}" for ext in VIDEO_EXTENSIONS] + [
            f"{self.incoming}{stem}{ext.upper()}" for ext in VIDEO_EXTENSIONS
        ]

    def edited_video_key(self, stem: str) -> str:
        return f"{self.edited}{stem}.mp4"

    def preview_key(self, stem: str) -> str:
        """The before/after contact sheet of an edit (made once the edit is saved)."""
        return f"{self.edited}{stem}.preview.jpg"

    def edited_manifest_key(self, stem: str) -> str:
        return f"{self.edited}{stem}.json"

    def estimate_key(self, stem: str) -> str:
        """A dry run's estimate: what would be sent and what it would cost."""
        return f"{self.edited}{stem}.estimate.json"

    def failed_report_key(self, stem: str) -> str:
        return f"{self.failed}{stem}.json"

    def work_folder(self, job_id: str) -> str:
        return f"{self.work}{job_id}/"

    def segment_key(self, job_id: str, index: int) -> str:
        """A long clip's segment as split (the input of one task)."""
        return f"{self.work}{job_id}/segments/{index:03d}.mp4"

    def edited_segment_key(self, job_id: str, index: int) -> str:
        """A segment as the API edited it, kept until the parent is stitched."""
        return f"{self.work}{job_id}/edited/{index:03d}.mp4"

    def folder_of(self, stem: str) -> str:
        """The incoming folder of a stem, for resolving relative reference-image keys."""
        head, _, _ = stem.rpartition("/")
        return f"{self.incoming}{head}/" if head else self.incoming
