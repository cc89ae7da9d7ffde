"""Small, real test media made in-process (PyAV + Pillow; never an ffmpeg binary).

- ``make_clip``: an H.264 (yuv420p) MP4 or MOV with moving content and, optionally, an AAC sine tone.
- ``make_image``: a PNG/JPEG/BMP/WEBP image (optionally with alpha) as bytes, optionally written to a file.
- ``probe``: decode-level facts about a clip (size, duration, frames, fps, audio) for assertions.
- ``read_frame``: one decoded frame as a Pillow RGB image, for pixel comparisons.
- ``read_frame_marks`` / ``beep_onsets``: what a clip made with ``frame_marks`` / ``beeps`` says about
  its frames and its sound, to check that splitting and stitching drop, repeat or shift nothing;
  ``read_image_mark``: the mark in one picture of such a frame (a contact sheet's cell).

Everything defaults to tiny sizes so tests stay fast.
"""

from __future__ import annotations

import io
import math
from array import array
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

__all__ = [
    "beep_onsets",
    "make_clip",
    "make_image",
    "probe",
    "read_frame",
    "read_frame_marks",
    "read_image_mark",
]

_AUDIO_RATE = 22050
_TONE_HZ = 440.0
_BEEP_HZ = 1000.0
_BEEP_SECONDS = 0.06
# Frame marks: 16 cells across the upper-middle band, white, black, 12 bits (most significant first),
# black, white. The reference cells give the threshold and tell an inverted frame from a normal one.
_MARK_BITS = 12
_MARK_CELLS = _MARK_BITS + 4
_MARK_BAND = (0.08, 0.14, 0.92, 0.30)  # left, top, right, bottom as fractions of the frame
# pixel formats whose first plane is 8-bit luma, one byte a pixel
_EIGHT_BIT_LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"}


def _background(width: int, height: int) -> Image.Image:
    """A diagonal-ish RGB gradient (distinct channels, so colour filters are visible)."""
    horiz = Image.linear_gradient("L").rotate(90).resize((width, height))
    vert = Image.linear_gradient("L").resize((width, height))
    flat = Image.new("L", (width, height), 96)
    return Image.merge("RGB", (horiz, vert, flat))


def _sine_s16(start_sample: int, count: int, rate: int, amplitude: float = 0.3) -> bytes:
    step = 2.0 * math.pi * _TONE_HZ / rate
    peak = int(32767 * amplitude)
    return array("h", (int(peak * math.sin(step * (start_sample + i))) for i in range(count))).tobytes()


def _beeps_s16(start_sample: int, count: int, rate: int, amplitude: float = 0.5) -> bytes:
    """A 1 kHz burst of 60 ms at every whole second, silence between."""
    step = 2.0 * math.pi * _BEEP_HZ / rate
    peak = int(32767 * amplitude)
    length = round(_BEEP_SECONDS * rate)
    samples = (start_sample + i for i in range(count))
    return array(
        "h", (int(peak * math.sin(step * (n % rate))) if n % rate < length else 0 for n in samples)
    ).tobytes()


def _mark_cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    left, top, right, bottom = _MARK_BAND
    x0, x1 = left * width, right * width
    y0, y1 = round(top * height), round(bottom * height)
    cell = (x1 - x0) / _MARK_CELLS
    return [(round(x0 + i * cell), y0, round(x0 + (i + 1) * cell) - 1, y1 - 1) for i in range(_MARK_CELLS)]


def _draw_frame_mark(img: Image.Image, index: int) -> None:
    if not 0 <= index < 1 << _MARK_BITS:
        raise ValueError(f"frame marks count up to {(1 << _MARK_BITS) - 1}, not {index}")
    bits = [(index >> (_MARK_BITS - 1 - b)) & 1 for b in range(_MARK_BITS)]
    whites = [1, 0, *bits, 0, 1]
    draw = ImageDraw.Draw(img)
    for box, white in zip(_mark_cells(*img.size), whites, strict=True):
        draw.rectangle(box, fill=(255, 255, 255) if white else (0, 0, 0))


def _read_frame_mark(gray: Image.Image) -> int:
    """The index drawn by `_draw_frame_mark`, from the centre of each cell (any size, inverted or not)."""
    left, top, right, bottom = _MARK_BAND
    width, height = gray.size
    rows = (bottom - top) * height / 4  # the middle half of the band's height
    band = gray.crop(
        (round(left * width), round(top * height + rows), round(right * width), round(bottom * height - rows))
    )
    values = band.resize((_MARK_CELLS * 4, 1), Image.Resampling.BOX).tobytes()
    means = [
        (values[4 * i + 1] + values[4 * i + 2]) / 2 for i in range(_MARK_CELLS)
    ]  # middle half of each cell
    white = (means[0] + means[-1]) / 2
    black = (means[1] + means[-2]) / 2
    if abs(white - black) < 64:
        raise ValueError(f"no frame mark: reference cells {white:.0f} vs {black:.0f}")
    threshold = (white + black) / 2
    value = 0
    for mean in means[2:-2]:
        value = value << 1 | ((mean > threshold) == (white > black))
    return value


def make_clip(
    path: str | Path,
    *,
    seconds: float,
    width: int,
    height: int,
    fps: int = 12,
    audio: bool = True,
    container: str = "mp4",
    faststart: bool = True,
    gop: int | None = None,
    frame_marks: bool = False,
    beeps: bool = False,
    x264: dict[str, str] | None = None,
) -> Path:
    """Write a real H.264/yuv420p clip (MP4 or MOV) with a moving square over a gradient.

    With ``audio=True`` an AAC mono sine tone of the same duration is muxed in; ``beeps`` replaces it
    with a 60 ms 1 kHz burst at every whole second (see `beep_onsets`). ``faststart`` puts the moov box
    first (``movflags=+faststart``); ``False`` leaves it at the end of the file. ``gop`` sets a keyframe
    every ``gop`` frames exactly (x264's default is every 250 frames). ``frame_marks`` draws each frame's
    index as 12 large binary cells in the upper-middle band (see `read_frame_marks`). ``x264`` options
    override the fast defaults (``{"preset": "veryfast", "tune": "film"}`` gives B-frames, as most
    encoders' output has). Width and height must be even (a yuv420p requirement).
    """
    if container not in ("mp4", "mov"):
        raise ValueError(f"container must be 'mp4' or 'mov', not {container!r}")
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_frames = max(1, round(seconds * fps))
    total_samples = round(n_frames / fps * _AUDIO_RATE)
    options = {"movflags": "+faststart"} if faststart else {}
    bg = _background(width, height)
    side = max(8, min(width, height) // 4)
    with av.open(str(out), mode="w", format=container, options=options) as oc:
        vs = oc.add_stream("libx264", rate=fps)
        vs.width = width
        vs.height = height
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1, fps)
        vs.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
        if gop is not None:
            vs.options = {**vs.options, "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        if x264:
            vs.options = {**vs.options, **x264}
        tone = _beeps_s16 if beeps else _sine_s16
        aus = None
        if audio:
            aus = oc.add_stream("aac", rate=_AUDIO_RATE, layout="mono")
            aus.time_base = Fraction(1, _AUDIO_RATE)
        samples_done = 0
        for i in range(n_frames):
            img = bg.copy()
            draw = ImageDraw.Draw(img)
            t = i / max(1, n_frames - 1)
            x = int((width - side) * t)
            y = int((height - side) * (0.5 + 0.5 * math.sin(2 * math.pi * t)))
            hue = (i * 37) % 256
            draw.rectangle([x, y, x + side - 1, y + side - 1], fill=(255, hue, 255 - hue))
            if frame_marks:
                _draw_frame_mark(img, i)
            frame = av.VideoFrame.from_image(img).reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                oc.mux(packet)
            if aus is not None:
                target = min(total_samples, round((i + 1) / fps * _AUDIO_RATE))
                while samples_done < target:
                    count = min(1024, target - samples_done)
                    af = av.AudioFrame(format="s16", layout="mono", samples=count)
                    af.planes[0].update(tone(samples_done, count, _AUDIO_RATE))
                    af.sample_rate = _AUDIO_RATE
                    af.pts = samples_done
                    af.time_base = Fraction(1, _AUDIO_RATE)
                    for packet in aus.encode(af):
                        oc.mux(packet)
                    samples_done += count
        for packet in vs.encode(None):
            oc.mux(packet)
        if aus is not None:
            for packet in aus.encode(None):
                oc.mux(packet)
    return out


def make_image(
    path: str | Path | None,
    *,
    width: int,
    height: int,
    fmt: str = "PNG",
    alpha: bool = False,
) -> bytes:
    """Return the bytes of a small test image (gradient + a shape); also write them to ``path`` if given."""
    fmt = fmt.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in ("PNG", "JPEG", "BMP", "WEBP"):
        raise ValueError(f"unsupported fmt {fmt!r}")
    img: Image.Image = _background(width, height)
    box = [width // 4, height // 4, width * 3 // 4, height * 3 // 4]
    ImageDraw.Draw(img).ellipse(box, fill=(30, 200, 60))
    if alpha:
        if fmt in ("JPEG", "BMP"):
            raise ValueError(f"{fmt} cannot carry an alpha channel")
        img = img.convert("RGBA")
        img.putalpha(Image.linear_gradient("L").resize((width, height)))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    data = buf.getvalue()
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return data


def _open(src: str | Path | bytes) -> Any:
    if isinstance(src, bytes | bytearray):
        return av.open(io.BytesIO(bytes(src)), mode="r")
    return av.open(str(src), mode="r")


def probe(src: str | Path | bytes) -> dict[str, Any]:
    """Facts about a clip, from the container and its packets.

    Keys: width, height, duration_s, frame_count, fps, has_audio, audio_duration_s, codec, pix_fmt,
    audio_codec, format. Durations are in seconds (floats); ``audio_duration_s`` is None without audio.
    """
    with _open(src) as ic:
        vs = ic.streams.video[0] if ic.streams.video else None
        aus = ic.streams.audio[0] if ic.streams.audio else None
        info: dict[str, Any] = {
            "format": ic.format.name,
            "has_audio": aus is not None,
            "audio_duration_s": None,
            "audio_codec": aus.codec_context.name if aus is not None else None,
        }
        container_duration = ic.duration / av.time_base if ic.duration else None
        if vs is None:
            info.update(width=0, height=0, duration_s=container_duration or 0.0, frame_count=0, fps=0.0)
            info.update(codec=None, pix_fmt=None)
            return info
        info.update(
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            codec=vs.codec_context.name,
            pix_fmt=vs.codec_context.pix_fmt,
            fps=float(vs.average_rate) if vs.average_rate else 0.0,
        )
        count = 0
        for packet in ic.demux(vs):
            if packet.size:
                count += 1
        info["frame_count"] = count
        if vs.duration is not None and vs.time_base is not None:
            info["duration_s"] = float(vs.duration * vs.time_base)
        elif info["fps"]:
            info["duration_s"] = count / info["fps"]
        else:
            info["duration_s"] = container_duration or 0.0
        if aus is not None:
            if aus.duration is not None and aus.time_base is not None:
                info["audio_duration_s"] = float(aus.duration * aus.time_base)
            else:
                info["audio_duration_s"] = container_duration
        return info


def read_frame(src: str | Path | bytes, index: int = 0) -> Image.Image:
    """Decode and return video frame ``index`` (0-based) as an RGB Pillow image."""
    with _open(src) as ic:
        for i, frame in enumerate(ic.decode(video=0)):
            if i == index:
                return frame.to_image().convert("RGB")
    raise IndexError(f"clip has no frame {index}")


def read_frame_marks(src: str | Path | bytes) -> list[int]:
    """Decode every frame of a clip made with ``frame_marks=True`` and return the indices, in order.

    Survives H.264, scaling to another size of the same aspect ratio, inversion and a watermark in the
    lower-right corner; a frame without a readable mark raises ValueError.
    """
    with _open(src) as ic:
        return [_read_frame_mark(_luma(frame)) for frame in ic.decode(video=0)]


def read_image_mark(image: Image.Image) -> int:
    """The frame mark in a picture of a frame made with ``frame_marks=True`` (a contact sheet's cell,
    upright and at any size of the frame's aspect ratio)."""
    return _read_frame_mark(image.convert("L"))


def _luma(frame: av.VideoFrame) -> Image.Image:
    """The frame's brightness as a grayscale image (a YUV frame's Y plane as it is: no conversion)."""
    if frame.format.name not in _EIGHT_BIT_LUMA_FIRST:
        frame = frame.reformat(format="gray")
    plane = frame.planes[0]
    return Image.frombuffer("L", (frame.width, frame.height), bytes(plane), "raw", "L", plane.line_size, 1)


def beep_onsets(src: str | Path | bytes, *, threshold: float = 0.1, gap: float = 0.3) -> list[float]:
    """Seconds at which a sound starts after at least ``gap`` s below ``threshold`` (of full scale).

    For a clip made with ``beeps=True``: the whole seconds, as long as its audio is in sync.
    """
    level = int(32767 * threshold)
    onsets: list[float] = []
    last_loud: float | None = None
    with _open(src) as ic:
        stream = ic.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in ic.decode(stream):
            start = float(frame.pts * frame.time_base)
            for mono in resampler.resample(frame):
                samples = array("h", bytes(mono.planes[0])[: 2 * mono.samples])
                for i, value in enumerate(samples):
                    if abs(value) < level:
                        continue
                    t = start + i / rate
                    if last_loud is None or t - last_loud > gap:
                        onsets.append(t)
                    last_loud = t
                start += mono.samples / rate
    return onsets
