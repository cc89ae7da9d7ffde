"""Fetching the finished video from the API's result URL, as a bounded stream of chunks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from requests.adapters import HTTPAdapter

CHUNK_SIZE = 1024 * 1024


class ResultUnavailable(Exception):
    """The result URL answered but will not give the file (expired link, 403/404)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"result download refused: HTTP {status} {reason}")
        self.status = status


class ResultDownloadError(Exception):
    """A transient failure fetching the result (5xx, reset, timeout); worth retrying later.

    Built without the URL or the underlying message, which would carry the URL's signature.
    """


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
