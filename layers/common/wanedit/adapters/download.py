"""Fetching the finished video from the API's result URL, as a bounded stream of chunks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from requests.adapters import HTTPAdapter

from wanedit.ports import ResultDownloadError, ResultUnavailable

CHUNK_SIZE = 1024 * 1024


class HttpResultDownloader:
    """Streams a result URL; the URL is a bearer credential, so it never goes into messages."""

    def __init__(
        self, *, session: requests.Session | None = None, timeout: tuple[float, float] = (5, 60)
    ) -> None:
        self._session = session or requests.Session()
        self._session.mount("https://", HTTPAdapter(pool_maxsize=4))
        self._timeout = timeout

    @contextmanager
    def open(self, url: str) -> Iterator[tuple[int | None, Iterator[bytes]]]:
        """(content length or None, chunk iterator); ResultUnavailable on 4xx, else ResultDownloadError."""
        try:
            with self._session.get(
                url, stream=True, timeout=self._timeout, allow_redirects=False
            ) as response:
                if 400 <= response.status_code < 500:
                    raise ResultUnavailable(response.status_code, response.reason or "")
                if response.status_code != 200:
                    raise ResultDownloadError(f"result download failed: HTTP {response.status_code}")
                length = response.headers.get("Content-Length")
                yield (int(length) if length else None), response.iter_content(chunk_size=CHUNK_SIZE)
        except requests.RequestException as error:
            raise ResultDownloadError(f"result download failed: {type(error).__name__}") from None
