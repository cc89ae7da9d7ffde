"""Fixtures and helpers for the emulator's own tests (and anyone who wants them).

Import what you need in a test module::

    from tests.emulator_fixtures import emu, media, Api  # noqa: F401  (fixtures are used by name)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from local.emulator import Emulator, ManualClock
from local.samplemedia import make_clip

API_KEY = "sk-test"
SAME_ACCOUNT_KEY = "sk-test-second-key"  # another key of API_KEY's account: sees its tasks
OTHER_ACCOUNT_KEY = "sk-other"  # a key of another account: sees none of them
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class MediaServer:
    """A tiny loopback HTTP server over a directory (stands in for presigned S3 URLs)."""

    root: Path
    base: str

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    root = tmp_path_factory.mktemp("media")
    make_clip(root / "clip.mp4", seconds=2, width=320, height=240)  # 4:3, with audio
    make_clip(root / "clip3.mp4", seconds=3, width=320, height=240)
    make_clip(root / "portrait.mp4", seconds=2, width=240, height=432, audio=False)  # ~9:16
    make_clip(root / "square.mov", seconds=2, width=256, height=256, container="mov", faststart=False)
    handler = functools.partial(_QuietHandler, directory=str(root))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield MediaServer(root, f"http://127.0.0.1:{srv.server_address[1]}")
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    e = Emulator(
        api_key=[API_KEY, SAME_ACCOUNT_KEY],
        accounts={"other": [OTHER_ACCOUNT_KEY]},
        clock=clock,
        task_seconds=90.0,
        pending_seconds=5.0,
    )
    e.start()
    yield e
    e.stop()


class Api:
    """Plain ``requests`` calls shaped like the reference's curl examples."""

    def __init__(self, emu: Emulator, key: str = API_KEY) -> None:
        self.emu = emu
        self.key = key
        self.s = requests.Session()

    def headers(self, **extra: str) -> dict[str, str]:
        h = {
            "X-DashScope-Async": "enable",
            "Authorization": f"Bearer {self.key}",
            "Content-Type": "application/json",
        }
        h.update(extra)
        return h

    def create_raw(self, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        return self.s.post(self.emu.base_url + CREATE, json=body, headers=headers or self.headers(), **kw)

    def create(
        self, video_url: str, prompt: str = "Invert it", media_extra: list | None = None, **params: Any
    ) -> str:
        r = self.create_raw(body(video_url, prompt, media_extra, **params))
        assert r.status_code == 200, r.text
        return str(r.json()["output"]["task_id"])

    def query(self, task_id: str, **kw: Any) -> requests.Response:
        return self.s.get(
            f"{self.emu.base_url}/api/v1/tasks/{task_id}",
            headers={"Authorization": f"Bearer {self.key}"},
            **kw,
        )

    def output(self, task_id: str) -> dict[str, Any]:
        r = self.query(task_id)
        assert r.status_code == 200, r.text
        return dict(r.json()["output"])

    def cancel(self, task_id: str) -> requests.Response:
        return self.s.post(
            f"{self.emu.base_url}/api/v1/tasks/{task_id}/cancel",
            headers={"Authorization": f"Bearer {self.key}"},
        )

    def list(self, **params: Any) -> requests.Response:
        return self.s.get(
            f"{self.emu.base_url}/api/v1/tasks",
            params=params,
            headers={"Authorization": f"Bearer {self.key}"},
        )

    def finish(self, task_id: str, seconds: float = 200.0) -> dict[str, Any]:
        """Advance the manual clock past the task's run and return the full query JSON."""
        self.emu.advance(seconds)
        r = self.query(task_id)
        assert r.status_code == 200, r.text
        return dict(r.json())


def body(video_url: str, prompt: str = "Invert it", media_extra: list | None = None, **params: Any) -> dict:
    b: dict[str, Any] = {
        "model": "wan2.7-videoedit",
        "input": {"prompt": prompt, "media": [{"type": "video", "url": video_url}, *(media_extra or [])]},
    }
    if params:
        b["parameters"] = params
    return b
