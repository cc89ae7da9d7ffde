"""Ranged reads: how probes see a file without downloading it.

A video may be 100 MB in S3; a probe needs its box headers and ``moov`` (usually well under 1 MB).
Probes take a `RangeReader`; the S3 adapter implements it with ranged GETs, tests with bytes or files.
`ProbeError` is what every probe raises for a file it cannot use.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from typing import Any, Protocol


class RangeReader(Protocol):
    """Random access to a file of known size. ``read`` may return fewer bytes at the end of the file."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


class BytesRangeReader:
    """A `RangeReader` over bytes in memory; ``size`` may be larger than the bytes to model a big file."""

    def __init__(self, data: bytes, size: int | None = None) -> None:
        self._data = data
        self.size = len(data) if size is None else size

    def read(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + max(length, 0)] if 0 <= offset < self.size else b""


class FileRangeReader:
    """A `RangeReader` over a local file (tests, the local stack, the CLI)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self.size = os.path.getsize(path)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        with open(self._path, "rb") as f:
            f.seek(offset)
            return f.read(length)


class CountingReader:
    """Wraps a `RangeReader` and counts calls and bytes returned: what a probe costs in S3 GETs."""

    def __init__(self, inner: RangeReader) -> None:
        self._inner = inner
        self.calls = 0
        self.bytes_read = 0

    @property
    def size(self) -> int:
        return self._inner.size

    def read(self, offset: int, length: int) -> bytes:
        data = self._inner.read(offset, length)
        self.calls += 1
        self.bytes_read += len(data)
        return data


class BlockReader:
    """Serves small reads from cached blocks, so a parser can ask for 4-byte headers cheaply.

    Reading past ``max_bytes`` of fetched data raises `ReadBudgetExceeded`: a probe never reads a whole
    file because a header is missing.
    """

    def __init__(self, inner: RangeReader, *, block_size: int = 65536, max_bytes: int = 1_048_576) -> None:
        self._inner = inner
        self._block_size = block_size
        self._max_bytes = max_bytes
        self._blocks: dict[int, bytes] = {}
        self.size = inner.size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        end = min(offset + length, self.size)
        first, last = offset // self._block_size, (end - 1) // self._block_size
        missing = [i for i in range(first, last + 1) if i not in self._blocks]
        if missing:
            fetched = sum(len(b) for b in self._blocks.values())
            if fetched + len(missing) * self._block_size > self._max_bytes:
                raise ReadBudgetExceeded(self._max_bytes)
            start = missing[0] * self._block_size
            data = self._inner.read(start, (missing[-1] + 1) * self._block_size - start)
            for i in missing:
                lo = i * self._block_size - start
                self._blocks[i] = data[lo : lo + self._block_size]
        joined = b"".join(self._blocks[i] for i in range(first, last + 1))
        lo = offset - first * self._block_size
        return joined[lo : lo + (end - offset)]


class ProbeError(Exception):
    """The file is not a usable video or image; ``reason`` says why, in words for a report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReadBudgetExceeded(ProbeError):
    """A probe needed more than its budget of bytes (a header missing, or buried too deep to trust)."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"no usable header within the first {budget:,} bytes")
        self.budget = budget


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over a `RangeReader`, for PyAV to open (an S3 object read by ranged GETs).

    Reads go out in aligned blocks of ``block_size``; the last ``blocks`` blocks are kept, so FFmpeg's
    small reads and short seeks back (box headers, interleaved audio) cost no second GET, and memory
    stays at ``blocks * block_size`` however large the file.
    """

    def __init__(self, reader: RangeReader, *, block_size: int = 1 << 20, blocks: int = 4) -> None:
        super().__init__()
        self._reader = reader
        self._block_size = block_size
        self._blocks = blocks
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._position = 0
        self.size = reader.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"seek to {base + offset}, before the start of the file")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self.size:
            number, skip = divmod(self._position, self._block_size)
            block = self._block(number)
            chunk = block[skip : skip + len(view) - done]
            if not chunk:
                break  # the reader gave less than its size promised
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._position += len(chunk)
        return done

    def _block(self, number: int) -> bytes:
        block = self._cache.get(number)
        if block is None:
            block = self._reader.read(number * self._block_size, self._block_size)
            self._cache[number] = block
            if len(self._cache) > self._blocks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(number)
        return block
