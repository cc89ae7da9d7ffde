"""PyAV helpers the split, stitch and preview code share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av


def open_input(path: Path) -> Any:
    """A PyAV input container (typed loosely: PyAV's stubs make every timestamp optional)."""
    return av.open(str(path))
