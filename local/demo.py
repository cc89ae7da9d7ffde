"""`make demo`: the whole pipeline on this machine — upload a real clip and sidecar, get the edit back.

`make demo-long` (``--long``) does the same with a 24 s clip and ``"long_clip": "split"``: it is
edited in three segments and stitched back into one video.

No AWS account and no API key: moto plays AWS (resources from template.yaml), the emulator plays
Model Studio. Exit status 0 only if the edited MP4 decodes at the expected size and its before/after
preview (demo-output/<name>-edited.preview.jpg) was made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from local.samplemedia import make_clip, probe
from local.stack import REPO, LocalStack
from wanedit.domain.job import Job

OUTPUT = REPO / "demo-output"
STEM = "demo/sample"
SIDECAR = {
    "prompt": "Convert the entire scene to a claymation style",
    "resolution": "720P",
    "ratio": "16:9",
    "watermark": True,
    "audio_setting": "origin",
}
EXPECTED_SIZE = (1280, 720)  # the reference's table: 720P at 16:9
TIMEOUT_SECONDS = 180


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="a 24 s clip, split, edited and stitched")
    long_clip = parser.parse_args(argv).long
    name = "sample-long" if long_clip else "sample"
    seconds = 24 if long_clip else 4
    sidecar = {**SIDECAR, "long_clip": "split"} if long_clip else SIDECAR
    OUTPUT.mkdir(exist_ok=True)
    clip = make_clip(
        OUTPUT / f"{name}-input.mp4", seconds=seconds, width=640, height=360, fps=24, audio=True, gop=24
    )
    print(f"made a sample clip: {clip} ({seconds} s, 640x360, H.264 + AAC)")
    with LocalStack() as stack:
        stack.run_background(poll_every=60)
        bucket = stack.resources.bucket
        print(f"local stack up: AWS endpoint {stack.resources.endpoint_url}, bucket {bucket}, ")
        print(f"                DashScope emulator {stack.emulator.base_url}")
        s3 = stack.client("s3")
        s3.put_object(Bucket=bucket, Key=f"incoming/{STEM}.json", Body=json.dumps(sidecar, indent=2).encode())
        s3.upload_file(str(clip), bucket, f"incoming/{STEM}.mp4")
        print(f"uploaded s3://{bucket}/incoming/{STEM}.mp4 and its sidecar: {json.dumps(sidecar)}")
        job = _wait_for_job(stack)
        if job is None or job.state.value != "PERSISTED":
            print(f"the job did not finish: {job.state.value if job else 'never created'}", file=sys.stderr)
            return 1
        video, manifest = OUTPUT / f"{name}-edited.mp4", OUTPUT / f"{name}-edited.json"
        preview = OUTPUT / f"{name}-edited.preview.jpg"
        s3.download_file(bucket, f"edited/{STEM}.mp4", str(video))
        s3.download_file(bucket, f"edited/{STEM}.json", str(manifest))
        if not _wait_for_object(s3, bucket, f"edited/{STEM}.preview.jpg"):
            print("no preview was made", file=sys.stderr)
            return 1
        s3.download_file(bucket, f"edited/{STEM}.preview.jpg", str(preview))
    info = probe(video)
    print(
        f"\nedited video: {video} ({video.stat().st_size:,} bytes, {info['width']}x{info['height']}, "
        f"{info['duration_s']:.2f} s, audio {'kept' if info['has_audio'] else 'none'})"
    )
    print(f"manifest:     {manifest}")
    print(f"preview:      {preview} (the source's frames over the edit's)")
    if (info["width"], info["height"]) != EXPECTED_SIZE:
        print(f"unexpected size, wanted {EXPECTED_SIZE}", file=sys.stderr)
        return 1
    return 0


def _wait_for_object(s3: Any, bucket: str, key: str, timeout: float = 60.0) -> bool:
    """The preview is drawn just after the edit is saved (by the LongClipFunction): wait for it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"):
            return True
        time.sleep(0.5)
    return False


def _wait_for_job(stack: LocalStack) -> Job | None:
    """Show each state the job passes through until it ends (or the timeout)."""
    from wanedit.container import services

    started, seen = time.monotonic(), ""
    while time.monotonic() - started < TIMEOUT_SECONDS:
        jobs = [job for job in services().store.list_jobs() if job.parent_id is None]
        job = jobs[0] if jobs else None
        state = (
            f"{job.state.value}{'/' + job.task_status if job and job.task_status else ''}"
            if job
            else "WAITING"
        )
        if state != seen:
            task = f" task {job.task_id}" if job and job.task_id else ""
            task += f" {len(job.segments)} segments" if job and job.segments else ""
            print(f"  [{time.monotonic() - started:5.1f} s] {state}{task}", flush=True)
            seen = state
        if job and job.state.is_terminal:
            return job
        time.sleep(0.5)
    return None


if __name__ == "__main__":
    sys.exit(main())
