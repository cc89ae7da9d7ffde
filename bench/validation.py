"""Figure 5: bytes read to validate a 100 MB clip (moov first and moov last), against reading it whole.

The clip is a real 2 s H.264 MP4 whose `mdat` is padded to 100 MB (a sparse file: the padding is a
hole, so making it costs nothing); sample offsets stay valid either way round. The probe is the
one the SubmitFunction runs, `wanedit.media.probe_video`, through a `CountingReader`.
"""

from __future__ import annotations

import struct
from pathlib import Path

from bench.common import Row, sample_clip, workdir
from local.samplemedia import make_clip
from wanedit.media import CountingReader, FileRangeReader, probe_video

SIZE = 100_000_000  # "100 MB", decimal: the API's limit
GOAL_BYTES = 1_000_000


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        out.append((kind, offset, size))
        offset += size
    return out


def padded_clip(src: Path, dst: Path, total: int = SIZE) -> Path:
    """`src` with its mdat grown so the file is `total` bytes (a hole at the end of the mdat)."""
    data = src.read_bytes()
    boxes = _boxes(data)
    pad = total - len(data)
    with dst.open("wb") as out:
        for kind, offset, size in boxes:
            body = data[offset : offset + size]
            if kind == b"mdat":
                if struct.unpack(">I", body[:4])[0] == 1:
                    out.write(body[:8] + struct.pack(">Q", size + pad) + body[16:])
                else:
                    out.write(struct.pack(">I", size + pad) + body[4:])
                out.seek(pad, 1)
            else:
                out.write(body)
        out.truncate(total)
    return dst


def validation_rows() -> list[Row]:
    rows = []
    base = workdir()
    layouts = {
        "moov first": sample_clip(),
        "moov last": make_clip(
            base / "clip-moovlast.mp4", seconds=2, width=320, height=240, fps=8, faststart=False
        ),
    }
    for name, src in layouts.items():
        big = padded_clip(Path(src), base / f"big-{name.replace(' ', '-')}.mp4")
        reader = CountingReader(FileRangeReader(big))
        info = probe_video(reader)
        ok = reader.bytes_read < GOAL_BYTES and 1.9 <= info.duration_s <= 2.1
        rows.append(
            Row(
                figure=f"5 validation cost ({name})",
                goal="< 1 MB read of 100 MB",
                measured=(
                    f"{reader.bytes_read:,} bytes in {reader.calls} reads;"
                    f" {reader.bytes_read / big.stat().st_size:.4%} of reading it whole"
                ),
                passed=ok,
                note=f"probe saw {info.width}x{info.height}, {info.duration_s:.2f} s",
                data={"bytes": reader.bytes_read, "calls": reader.calls, "size": big.stat().st_size},
            )
        )
    return rows
