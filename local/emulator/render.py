"""The emulator's "model": fetch the inputs like the service does, check them against the reference's
media limits, then really edit the video with PyAV + Pillow (never an ffmpeg binary).

The edit is deliberately simple and detectable: scale-and-center-crop to the table size, colour
inversion (every pixel), the "AI Generated" watermark in the lower-right corner when asked, and the
``duration`` truncation. Audio: kept (re-encoded to AAC) for ``audio_setting=origin``; for ``auto``
kept too, unless the prompt talks about sound (sound/music/audio/song/voice/noise/...), in which case
the "generated" audio is a plain sine tone of the output's duration.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import math
import re
import tempfile
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import av
import requests
from PIL import Image, ImageDraw, ImageFont, ImageOps

from wanedit.domain.limits import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, OUTPUT_SIZES, Resolution

CHUNK = 256 * 1024


SOUND_WORDS = re.compile(
    r"\b(sound|sounds|music|musical|audio|song|songs|voice|voices|noise|soundtrack|singing|sing)\b|"
    r"(声音|音乐|音效|配乐|歌)",
    re.IGNORECASE,
)

DOWNLOAD_TIMEOUT_MSG = "Download the media resource timed out during the data inspection process."
FORMAT_MSG = "The media format is not supported or incorrect for the data inspection."


class MediaError(Exception):
    """A task-level failure: becomes the task's FAILED ``code``/``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class RenderResult:
    path: Path
    width: int
    height: int
    input_duration: float
    output_duration: float
    has_audio: bool


def pick_size(resolution: str, ratio: str | None, in_w: int, in_h: int) -> tuple[int, int]:
    # A request may name any string; validation let only the table's keys through.
    table = cast("Mapping[str, tuple[int, int]]", OUTPUT_SIZES[cast("Resolution", resolution)])
    if ratio:
        return table[ratio]
    aspect = in_w / in_h
    # closest aspect on a log scale, so 2:1 vs 1:2 are symmetric
    return min(table.values(), key=lambda wh: abs(math.log((wh[0] / wh[1]) / aspect)))


# --------------------------------------------------------------------------------------------- fetch
def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_url(
    url: str, dest: Path, max_bytes: int, *, allow_remote: bool = False, timeout: float = 30.0
) -> None:
    """GET ``url`` exactly as given into ``dest``; redirects only to loopback hosts; size-capped."""
    for _hop in range(5):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise MediaError("InvalidParameter", f"The media url scheme {parts.scheme!r} is not supported.")
        if not allow_remote and not _is_loopback(parts.hostname or ""):
            raise MediaError(
                "InvalidParameter.DataInspection",
                f"Download the media resource failed during the data inspection process: "
                f"host {parts.hostname!r} is not reachable from the emulator (loopback only).",
            )
        try:
            resp = requests.get(url, stream=True, timeout=(5.0, timeout), allow_redirects=False)
        except requests.Timeout as exc:
            raise MediaError("InvalidParameter.DataInspection", DOWNLOAD_TIMEOUT_MSG) from exc
        except requests.RequestException as exc:
            raise MediaError(
                "InvalidParameter.DataInspection",
                "Download the media resource failed during the data inspection process: "
                f"{type(exc).__name__}.",
            ) from exc
        with resp:
            if resp.is_redirect and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                continue
            if resp.status_code != 200:
                raise MediaError(
                    "InvalidParameter.DataInspection",
                    f"Download the media resource failed during the data inspection process: "
                    f"HTTP {resp.status_code}.",
                )
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(int(declared), max_bytes)
            size = 0
            try:
                with dest.open("wb") as fh:
                    for chunk in resp.iter_content(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise _too_big(size, max_bytes)
                        fh.write(chunk)
            except requests.RequestException as exc:
                raise MediaError("InvalidParameter.DataInspection", DOWNLOAD_TIMEOUT_MSG) from exc
            return
    raise MediaError("InvalidParameter.DataInspection", "Too many redirects while downloading the media.")


def _too_big(size: int, limit: int) -> MediaError:
    return MediaError(
        "InvalidParameter",
        f"The media file size {size / 1048576:.2f}MB exceeds the limit of {limit // 1048576}MB.",
    )


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    m = re.match(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", uri, re.DOTALL)
    if not m:
        raise MediaError(
            "InvalidParameter", "The data URI must look like data:{MIME_type};base64,{base64_data}."
        )
    try:
        return m.group(1).lower(), base64.b64decode(m.group(2), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise MediaError("InvalidParameter", "The base64 data of the media is invalid.") from exc


# --------------------------------------------------------------------------------------------- checks
def _check_dims(kind: str, w: int, h: int, lo: int, hi: int) -> None:
    if not (lo <= w <= hi and lo <= h <= hi):
        raise MediaError(
            "InvalidParameter",
            f"The {kind} resolution {w}x{h} is out of range: "
            f"width and height must be in [{lo}, {hi}] pixels.",
        )
    if max(w / h, h / w) > 8:
        raise MediaError(
            "InvalidParameter", f"The {kind} aspect ratio {w}:{h} is out of the range [1:8, 8:1]."
        )


def sniff_video(head: bytes) -> str | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"
    return None


def inspect_video(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        head = fh.read(16)
    if sniff_video(head) is None:
        raise MediaError("InvalidParameter.DataInspection", FORMAT_MSG + " The video must be MP4 or MOV.")
    try:
        with av.open(str(path)) as ic:
            if not ic.streams.video:
                raise MediaError("InvalidParameter", "The input video has no video stream.")
            vs = ic.streams.video[0]
            w, h = vs.codec_context.width, vs.codec_context.height
            if vs.duration is not None and vs.time_base is not None:
                dur = float(vs.duration * vs.time_base)
            else:
                dur = (ic.duration or 0) / av.time_base
            fps = vs.average_rate or vs.guessed_rate or Fraction(25)
            has_audio = bool(ic.streams.audio)
    except av.error.FFmpegError as exc:
        raise MediaError("InvalidParameter.DataInspection", FORMAT_MSG) from exc
    if not 2.0 <= round(dur, 2) <= 10.0:
        raise MediaError("InvalidParameter", f"The video duration {dur:.2f}s exceeds the limit of [2, 10]s.")
    _check_dims("video", w, h, 240, 4096)
    return {"width": w, "height": h, "duration": dur, "fps": fps, "has_audio": has_audio}


IMAGE_MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}


def inspect_image(data: bytes, declared_mime: str | None = None) -> None:
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_big(len(data), MAX_IMAGE_BYTES)
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            w, h = img.size
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    except (OSError, Image.DecompressionBombError) as exc:
        raise MediaError("InvalidParameter.DataInspection", FORMAT_MSG) from exc
    if fmt not in IMAGE_MIMES:
        raise MediaError(
            "InvalidParameter.DataInspection",
            f"{FORMAT_MSG} The image format {fmt or 'unknown'} is not one of JPEG, PNG, BMP, WEBP.",
        )
    if declared_mime is not None:
        expected = IMAGE_MIMES[fmt]
        if declared_mime.replace("image/jpg", "image/jpeg") != expected:
            raise MediaError(
                "InvalidParameter",
                f"The MIME type {declared_mime} of the data URI does not match "
                f"the image content ({expected}).",
            )
    if fmt == "PNG" and has_alpha:
        raise MediaError(
            "InvalidParameter", "The reference image must not have an alpha channel (PNG with alpha)."
        )
    _check_dims("image", w, h, 240, 8000)


# --------------------------------------------------------------------------------------------- render
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: small bitmap font
        return ImageFont.load_default()


def draw_watermark(img: Image.Image) -> None:
    w, h = img.size
    size = max(14, h // 16)
    font = _font(size)
    draw = ImageDraw.Draw(img)
    text = "AI Generated"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    margin = max(6, h // 40)
    x, y = w - tw - margin, h - th - margin
    pad = max(3, size // 5)
    draw.rectangle([x - pad, y - pad, x + tw + pad, y + th + pad], fill=(0, 0, 0))
    draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255))


def _cover(img: Image.Image, out_w: int, out_h: int) -> Image.Image:
    return ImageOps.fit(img, (out_w, out_h), method=Image.Resampling.BILINEAR)


def _sine(start: int, count: int, rate: int) -> bytes:
    step = 2.0 * math.pi * 330.0 / rate
    return array("h", (int(9000 * math.sin(step * (start + i))) for i in range(count))).tobytes()


def render(
    src: Path,
    dest: Path,
    *,
    out_w: int,
    out_h: int,
    duration: int,
    watermark: bool,
    keep_audio: bool,
    generate_audio: bool,
) -> RenderResult:
    """Decode ``src`` and write the edited H.264/AAC MP4 at ``dest`` (frame by frame; bounded memory)."""
    info = inspect_video(src)
    in_dur = info["duration"]
    fps: Fraction = Fraction(info["fps"]).limit_denominator(1001)
    limit = min(float(duration), in_dur) if duration else in_dur
    max_frames = max(1, math.floor(limit * fps + 1e-6))
    tmp = dest.with_suffix(".part.mp4")
    frames = 0
    audio_samples = 0
    audio_rate = 0
    with (
        av.open(str(src)) as ic,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as oc,
    ):
        ivs = ic.streams.video[0]
        ias = ic.streams.audio[0] if (keep_audio and ic.streams.audio) else None
        ovs = oc.add_stream("libx264", rate=fps)
        ovs.width, ovs.height, ovs.pix_fmt = out_w, out_h, "yuv420p"
        ovs.time_base = 1 / fps
        ovs.options = {"preset": "ultrafast", "crf": "26"}
        oas = None
        resampler = None
        if ias is not None or generate_audio:
            audio_rate = (ias.codec_context.sample_rate if ias is not None else 0) or 44100
            layout = "stereo" if ias is not None and ias.codec_context.channels >= 2 else "mono"
            oas = oc.add_stream("aac", rate=audio_rate, layout=layout)
            oas.time_base = Fraction(1, audio_rate)
            resampler = av.AudioResampler(format="s16", layout=layout, rate=audio_rate)
        max_samples = math.floor(limit * audio_rate) if audio_rate else 0
        sample_bytes = 2 * (2 if oas is not None and oas.codec_context.channels >= 2 else 1)

        def put_audio(pcm: bytes, layout: str) -> None:
            nonlocal audio_samples
            assert oas is not None
            count = min(len(pcm) // sample_bytes, max_samples - audio_samples)
            if count <= 0:
                return
            af = av.AudioFrame(format="s16", layout=layout, samples=count)
            af.planes[0].update(pcm[: count * sample_bytes].ljust(af.planes[0].buffer_size, b"\0"))
            af.sample_rate = audio_rate
            af.pts = audio_samples
            af.time_base = Fraction(1, audio_rate)
            audio_samples += count
            for pkt in oas.encode(af):
                oc.mux(pkt)

        streams = [ivs] + ([ias] if ias is not None else [])
        for packet in ic.demux(*streams):
            if packet.stream is ivs:
                if frames >= max_frames:
                    continue
                for frame in packet.decode():
                    assert isinstance(frame, av.VideoFrame)
                    if frames >= max_frames:
                        break
                    img = ImageOps.invert(_cover(frame.to_image().convert("RGB"), out_w, out_h))
                    if watermark:
                        draw_watermark(img)
                    vf = av.VideoFrame.from_image(img).reformat(format="yuv420p")
                    vf.pts = frames
                    vf.time_base = 1 / fps
                    frames += 1
                    for pkt in ovs.encode(vf):
                        oc.mux(pkt)
            elif oas is not None and resampler is not None and audio_samples < max_samples:
                for aframe in packet.decode():
                    assert isinstance(aframe, av.AudioFrame)
                    aframe.pts = None
                    for rf in resampler.resample(aframe):
                        put_audio(bytes(rf.planes[0])[: rf.samples * sample_bytes], oas.layout.name)
        if oas is not None and resampler is not None:
            if ias is not None:
                for rf in resampler.resample(None):
                    put_audio(bytes(rf.planes[0])[: rf.samples * sample_bytes], oas.layout.name)
            else:  # "generated" audio for a prompt that asks for sound
                target = min(max_samples, math.floor(frames / fps * audio_rate))
                while audio_samples < target:
                    n = min(1024, target - audio_samples)
                    put_audio(_sine(audio_samples, n, audio_rate), "mono")
        for pkt in ovs.encode(None):
            oc.mux(pkt)
        if oas is not None:
            for pkt in oas.encode(None):
                oc.mux(pkt)
    tmp.replace(dest)
    out_dur = frames / fps
    return RenderResult(dest, out_w, out_h, in_dur, float(out_dur), oas is not None)


def prepare_and_render(
    task_id: str,
    media: list[dict[str, Any]],
    params: dict[str, Any],
    prompt: str,
    out_dir: Path,
    *,
    allow_remote: bool = False,
) -> RenderResult:
    """Download and check every input, then render. Raises MediaError for task-level failures."""
    with tempfile.TemporaryDirectory(prefix=f"wanemu-{task_id[:8]}-") as td:
        work = Path(td)
        video_path = work / "input"
        for i, item in enumerate(media):
            url = str(item["url"])
            if item["type"] == "video":
                if url.startswith("data:"):
                    _mime, data = decode_data_uri(url)
                    if len(data) > MAX_VIDEO_BYTES:
                        raise _too_big(len(data), MAX_VIDEO_BYTES)
                    video_path.write_bytes(data)
                else:
                    fetch_url(url, video_path, MAX_VIDEO_BYTES, allow_remote=allow_remote)
            else:
                if url.startswith("data:"):
                    mime, data = decode_data_uri(url)
                    inspect_image(data, mime)
                else:
                    img_path = work / f"ref{i}"
                    fetch_url(url, img_path, MAX_IMAGE_BYTES, allow_remote=allow_remote)
                    inspect_image(img_path.read_bytes())
        info = inspect_video(video_path)
        out_w, out_h = pick_size(params["resolution"], params.get("ratio"), info["width"], info["height"])
        audio_setting = params.get("audio_setting", "auto")
        wants_sound = audio_setting == "auto" and bool(SOUND_WORDS.search(prompt or ""))
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            return render(
                video_path,
                out_dir / f"{task_id}.mp4",
                out_w=out_w,
                out_h=out_h,
                duration=int(params.get("duration") or 0),
                watermark=bool(params.get("watermark", False)),
                keep_audio=not wants_sound,
                generate_audio=wants_sound,
            )
        except av.error.FFmpegError as exc:
            raise MediaError("InvalidParameter.DataInspection", FORMAT_MSG) from exc
