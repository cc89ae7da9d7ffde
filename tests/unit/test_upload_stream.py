"""S3ObjectStore.upload_stream: parts overlap the download, bytes and order exact, failures abort."""

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


def test_a_failing_part_aborts_and_at_most_two_parts_are_in_flight(s3: Any) -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    real = s3.upload_part

    class Wrapped:
        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def upload_part(self, **kwargs: Any) -> Any:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                if kwargs["PartNumber"] == 3:
                    raise OSError("part refused")
                return real(**kwargs)
            finally:
                with lock:
                    in_flight -= 1

    handed: list[int] = []

    def source() -> Iterator[bytes]:
        for i in range(6):
            handed.append(i)
            yield bytes([i]) * PART

    with pytest.raises(OSError):
        S3ObjectStore(BUCKET, client=Wrapped()).upload_stream("bad.mp4", source(), part_size=PART)
    assert peak == 1  # one uploader thread
    assert len(handed) <= 5  # the source stops soon after the failing part (bounded read-ahead)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
