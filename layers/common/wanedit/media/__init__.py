"""Media probes: what a video or image is, from ranged reads of its headers (pure Python, no FFmpeg)."""

from wanedit.media.imageprobe import ImageInfo, probe_image, probe_image_reader
from wanedit.media.mp4probe import VideoInfo, probe_video
from wanedit.media.reader import (
    BytesRangeReader,
    CountingReader,
    FileRangeReader,
    ProbeError,
    RangeReader,
)

__all__ = [
    "BytesRangeReader",
    "CountingReader",
    "FileRangeReader",
    "ImageInfo",
    "ProbeError",
    "RangeReader",
    "VideoInfo",
    "probe_image",
    "probe_image_reader",
    "probe_video",
]
