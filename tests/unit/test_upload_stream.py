"""S3ObjectStore.upload_stream: bytes and order exact, memory bounded, failures abort the upload."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from wanedit.adapters.s3 import S3ObjectStore

BUCKET = "upload-stream-bucket"
PART = 5 * 1024 * 1024


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.mark.parametrize(
    "sizes",
    [[PART] * 3, [1, 2, 3], [], [PART * 3 + 5], "random"],
    ids=["whole-parts", "tiny", "empty", "one-big-chunk", "ragged"],
)
def test_bytes_arrive_whole_and_in_order(s3: Any, sizes: Any) -> None:
    rng = random.Random(3)
    if sizes == "random":
        sizes = [rng.randint(1, 3 * 1024 * 1024) for _ in range(12)]
    data = [rng.randbytes(n) for n in sizes]
    total = S3ObjectStore(BUCKET, client=s3).upload_stream("out.mp4", iter(data), part_size=PART)
    body = s3.get_object(Bucket=BUCKET, Key="out.mp4")["Body"].read()
    assert body == b"".join(data)
    assert total == len(body)


def test_a_failing_source_aborts_after_the_part_in_flight(s3: Any) -> None:
    def source() -> Iterator[bytes]:
        yield b"x" * (PART + 1)
        yield b"y" * PART
        raise RuntimeError("connection reset")

    with pytest.raises(RuntimeError):
        S3ObjectStore(BUCKET, client=s3).upload_stream("bad.mp4", source(), part_size=PART)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_failing_part_aborts_and_no_part_is_sent_after_it(s3: Any) -> None:
    in_flight = 0
    peak = 0
    sent: list[int] = []
    lock = threading.Lock()

    def count_in(params: dict[str, Any], **_: Any) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            sent.append(params["PartNumber"])
        if params["PartNumber"] == 3:
            with lock:
                in_flight -= 1
            raise OSError("part refused")

    def count_out(**_: Any) -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    s3.meta.events.register("before-parameter-build.s3.UploadPart", count_in)
    s3.meta.events.register("after-call.s3.UploadPart", count_out)
    handed: list[int] = []

    def source() -> Iterator[bytes]:
        for i in range(8):
            handed.append(i)
            yield bytes([i]) * PART

    with pytest.raises(OSError):
        S3ObjectStore(BUCKET, client=s3).upload_stream("bad.mp4", source(), part_size=PART)
    assert peak == 1  # one part uploads at a time: memory stays a few parts, whatever the result's size
    # s3transfer drains the source after a failure (bounded memory, wasted download time) but sends
    # nothing more: every later part is skipped and the upload aborted.
    assert sent == [1, 2, 3] and len(handed) == 8
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
