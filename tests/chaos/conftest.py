"""The chaos suite's media: one small real clip, uploaded as every clip and served as every task's result."""

from __future__ import annotations

from pathlib import Path

import av
import pytest


@pytest.fixture(scope="session")
def result_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 320x240, 8 fps, with audio. The emulator serves it as every result (no-render mode), so an
    edited MP4 is whole exactly when it is this file, byte for byte; that it decodes is checked here."""
    from local.samplemedia import make_clip

    path = make_clip(tmp_path_factory.mktemp("chaos") / "clip.mp4", seconds=2, width=320, height=240, fps=8)
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 16, f"the chaos clip decodes to {frames} frames"
    return Path(path)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s with a keyframe every 2 s: split into two segments without re-encoding."""
    from local.samplemedia import make_clip

    return Path(
        make_clip(
            tmp_path_factory.mktemp("chaos") / "long.mp4", seconds=12, width=320, height=240, fps=8, gop=16
        )
    )
