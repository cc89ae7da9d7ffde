"""S3: ranged reads for validation, presigned URLs for the API, streaming writes for results."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from wanedit.ports import ObjectInfo

# S3 multipart parts must be >= 5 MiB (except the last); 8 MiB keeps memory low and part count sane
# (a 100 MB result is 13 parts).
DEFAULT_PART_SIZE = 8 * 1024 * 1024


class _ChunkStream(io.RawIOBase):
    """A non-seekable file over an iterator of chunks (s3transfer reads uploads from files)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self.total += count
        return count


class S3RangeReader:
    """Random access to one object version through ranged GETs (never downloads the whole file)."""

    def __init__(self, client: Any, bucket: str, info: ObjectInfo) -> None:
        self._client, self._bucket, self._info = client, bucket, info
        self.size = info.size
        self.bytes_read = 0
        self.requests = 0

    def read(self, offset: int, length: int) -> bytes:
        if length <= 0 or offset >= self.size:
            return b""
        end = min(offset + length, self.size) - 1
        kwargs: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": self._info.key,
            "Range": f"bytes={offset}-{end}",
        }
        if self._info.version_id:
            kwargs["VersionId"] = self._info.version_id
        body = self._client.get_object(**kwargs)["Body"].read()
        self.bytes_read += len(body)
        self.requests += 1
        return bytes(body)


class S3ObjectStore:
    """The `wanedit.ports.ObjectStore` on S3; the only module that speaks S3."""

    def __init__(self, bucket: str, *, client: Any = None) -> None:
        self.bucket = bucket
        # SigV4 presigning with virtual-host addressing except on a local endpoint (moto), where
        # path style keeps loopback URLs valid.
        self._client = client or boto3.client(
            "s3", config=Config(signature_version="s3v4", retries={"mode": "standard"})
        )

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            response = self._client.head_object(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchKey",
                "NotFound",
                "NoSuchVersion",
            ):
                return None
            raise
        version = response.get("VersionId")
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=None if version in (None, "null") else version,
            content_type=response.get("ContentType"),
        )

    def range_reader(self, info: ObjectInfo) -> S3RangeReader:
        return S3RangeReader(self._client, self.bucket, info)

    def read_head(self, info: ObjectInfo, max_bytes: int) -> bytes:
        """The first `max_bytes` of a version (a sidecar, an image header) in one ranged GET."""
        return self.range_reader(info).read(0, max_bytes)

    def presign_get_version(self, key: str, version_id: str | None, ttl_seconds: int) -> str:
        """A GET URL for exactly this version, valid `ttl_seconds`: how the API receives inputs."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return str(self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds))

    def put_json(
        self, key: str, document: Mapping[str, Any], *, tags: Mapping[str, str] | None = None
    ) -> None:
        body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False).encode("utf-8")
        self.put_bytes(key, body, content_type="application/json", tags=tags)

    def put_bytes(
        self, key: str, body: bytes, *, content_type: str, tags: Mapping[str, str] | None = None
    ) -> None:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
        }
        if tags:
            kwargs["Tagging"] = urlencode(tags)
        self._client.put_object(**kwargs)

    def tag_version(self, key: str, version_id: str | None, tags: Mapping[str, str]) -> bool:
        """Set tags on one object version (lifecycle rules filter on them), keeping its other tags.

        False when that version no longer exists (a user deleted it): nothing to tag.
        """
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            current = self._client.get_object_tagging(**kwargs).get("TagSet", [])
            merged = {**{t["Key"]: t["Value"] for t in current}, **tags}
            self._client.put_object_tagging(
                **kwargs, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]}
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
                return False
            raise
        return True

    def download_to(self, key: str, path: str) -> None:
        """Save an object to a local file (the CLI's fetch), streamed by the transfer manager."""
        self._client.download_file(self.bucket, key, path)

    def download_version(self, key: str, version_id: str | None, path: str) -> None:
        """Save one object version to a local file (a long clip for the split worker, a segment)."""
        extra = {"VersionId": version_id} if version_id else None
        self._client.download_file(self.bucket, key, path, ExtraArgs=extra)

    def upload_file(
        self, key: str, path: str, *, content_type: str, tags: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        """Upload a local file (multipart above 8 MiB, read part by part) and return what was stored."""
        extra: dict[str, Any] = {"ContentType": content_type}
        if tags:
            extra["Tagging"] = urlencode(tags)
        self._client.upload_file(path, self.bucket, key, ExtraArgs=extra)
        info = self.head(key)
        if info is None:
            raise RuntimeError(f"{key} is missing right after its upload")
        return info

    def delete_prefix(self, prefix: str) -> int:
        """Delete every current object under `prefix` (working files; versions expire by lifecycle)."""
        deleted = 0
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def get_json(self, key: str) -> Any:
        return json.loads(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def upload_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str = "video/mp4",
        part_size: int = DEFAULT_PART_SIZE,
        tags: Mapping[str, str] | None = None,
    ) -> int:
        """Stream `chunks` into `key` as a multipart upload, reading the next part while one uploads.

        s3transfer bounds what a non-seekable source holds in memory: one part being read, one queued
        (``max_in_memory_upload_chunks``) and one uploading (``max_concurrency``), so a 100 MB result
        costs about 3 parts of memory. A failure anywhere aborts the upload (no half object, no
        orphaned parts; s3transfer reads the rest of the source first, sending nothing more).
        bench/ figure 4 measured it against the hand-written streamer it replaced, in one run: less
        peak memory (+36 vs +42 MB) at the same throughput (bench/RESULTS.md).
        """
        extra: dict[str, Any] = {"ContentType": content_type}
        if tags:
            extra["Tagging"] = urlencode(tags)
        source = _ChunkStream(chunks)
        config = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=1
        )
        config.max_in_memory_upload_chunks = 1  # s3transfer's own setting; boto3's config passes it on
        self._client.upload_fileobj(
            io.BufferedReader(source, part_size), self.bucket, key, ExtraArgs=extra, Config=config
        )
        return source.total
