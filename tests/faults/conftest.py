"""The fault suite's shared clip (the summary table lives in tests/faults/summary.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def clip() -> bytes:
    """One small real clip for every case: 2 s, 320x240, 8 fps (the API's minimum duration)."""
    from local.samplemedia import make_clip

    with tempfile.TemporaryDirectory() as tmp:
        path = make_clip(Path(tmp) / "clip.mp4", seconds=2, width=320, height=240, fps=8)
        return Path(path).read_bytes()
