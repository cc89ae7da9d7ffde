"""`wanedit conformance --base-url URL`: does the service answer as the emulator assumes?

A short, bounded probe anyone with a key can run (the key from ``DASHSCOPE_API_KEY``). It makes one
task (a 2 s clip edited at 720P: about 4 billed seconds, input plus output), then asks what the
documents leave open or what the emulator had to assume, and prints, per check, what the service
answered beside what the emulator assumes (``local/emulator/contract.py``), and whether that is
documented or assumed:

- create: the asynchronous create's answer;
- query: the task's times are UTC+8 and agree with this machine's clock (one clock);
- wait: the task ends SUCCEEDED with the documented output and usage;
- list: entries carry exactly the documented fields, times as epoch milliseconds agreeing with the
  query, the create's request id; the window is read in UTC+8; exactly 24 h is taken, 25 h refused;
- cancel of the finished task, and a query of an unknown task id.

Exit status 0 when every check agrees, 1 on a difference (or the overall timeout), 2 on bad usage.

Raw HTTP (requests) rather than ``wanedit.dashscope``: the probe must see the answers as sent, and
send what the client refuses to (a 25 h window).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests

from local.emulator.contract import (
    CANCEL_REFUSED,
    CREATE_PATH,
    LIST_ENTRY_FIELDS,
    LIST_TIME_FIELDS,
    LIST_WINDOW_REFUSED,
    LIST_WINDOW_SECONDS,
    LIST_WINDOW_TZ_HOURS,
    TASKS_PATH,
    UNKNOWN_OUTPUT_FIELDS,
    Basis,
)

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2
DEFAULT_TIMEOUT = 600.0  # a real task takes 1-5 minutes
CALL_TIMEOUT = 15.0
CLOCK_SKEW = 30.0  # the service's clock vs ours (both NTP-synced), plus the request's flight
PROMPT = "Convert the entire scene to a claymation style"
API_TZ = timezone(timedelta(hours=8))
LIST_TZ = timezone(timedelta(hours=LIST_WINDOW_TZ_HOURS))
TIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
OUTPUT_SUCCEEDED = frozenset(
    {"task_id", "task_status", "submit_time", "scheduled_time", "end_time", "orig_prompt", "video_url"}
)
USAGE_FIELDS = frozenset({"duration", "input_video_duration", "output_video_duration", "video_count", "SR"})
ENDED = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
COST = "one task: a 2 s clip at 720P, about 4 billed seconds (input + output)"


@dataclass
class Check:
    name: str
    answered: str  # what the service answered
    assumed: str  # what the emulator does
    basis: Basis
    ok: bool


class ProbeTimeout(Exception):
    """The overall timeout ran out."""


class Probe:
    """The checks, in order, against one base URL. ``run`` never raises for what the service says."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        video_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
        self._key = api_key
        self.video_url = video_url
        self._clock, self._sleep, self._monotonic = clock, sleep, monotonic
        self._deadline = monotonic() + timeout
        self._session = requests.Session()
        self._session.trust_env = False
        self.checks: list[Check] = []

    # ------------------------------------------------------------------ HTTP

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        left = self._deadline - self._monotonic()
        if left <= 0:
            raise ProbeTimeout
        headers = {"Authorization": f"Bearer {self._key}", **kw.pop("headers", {})}
        return self._session.request(
            method,
            self.base_url + path,
            headers=headers,
            timeout=min(CALL_TIMEOUT, left),
            allow_redirects=False,
            **kw,
        )

    def _list(self, start: datetime, end: datetime, tz: timezone = LIST_TZ) -> requests.Response:
        def text(moment: datetime) -> str:
            return moment.astimezone(tz).strftime("%Y%m%d%H%M%S")

        return self._call(
            "GET", TASKS_PATH, params={"start_time": text(start), "end_time": text(end), "page_size": 100}
        )

    def _check(self, name: str, answered: str, assumed: str, basis: Basis, ok: bool) -> bool:
        self.checks.append(Check(name, self._scrub(answered), assumed, basis, ok))
        return ok

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    # ------------------------------------------------------------------ the checks

    def run(self) -> list[Check]:
        try:
            self._run()
        except ProbeTimeout:
            self._check(
                "overall timeout", "no answer in time", "every check within the timeout", "assumed", False
            )
        except requests.RequestException as exc:
            self._check("transport", f"{type(exc).__name__}: {exc}", "an HTTP answer", "documented", False)
        finally:
            self._session.close()
        return self.checks

    def _run(self) -> None:
        sent = self._clock()
        created = self._call(
            "POST",
            CREATE_PATH,
            headers={"X-DashScope-Async": "enable", "Content-Type": "application/json"},
            data=json.dumps(
                {
                    "model": "wan2.7-videoedit",
                    "input": {"prompt": PROMPT, "media": [{"type": "video", "url": self.video_url}]},
                    "parameters": {"resolution": "720P", "prompt_extend": False, "watermark": False},
                }
            ),
        )
        body = _json(created)
        output = _object(body.get("output"))
        task_id = output.get("task_id")
        if not self._check(
            "create",
            f"{created.status_code} {_shape(body)}",
            "200 {output: {task_id, task_status: PENDING}, request_id}",
            "documented",
            created.status_code == 200
            and set(output) == {"task_id", "task_status"}
            and output.get("task_status") == "PENDING"
            and isinstance(task_id, str)
            and isinstance(body.get("request_id"), str),
        ):
            return
        assert isinstance(task_id, str)
        create_request_id = body["request_id"]
        answered = self._clock()

        first = _object(_json(self._call("GET", f"{TASKS_PATH}/{task_id}")).get("output"))
        submitted = _api_time(first.get("submit_time"))
        self._check(
            "query: times in UTC+8 on our clock",
            f"{first.get('task_status')}, submit_time {first.get('submit_time')!r}"
            + (f" ({submitted - sent:+.1f} s from our send)" if submitted is not None else ""),
            f"'YYYY-MM-DD HH:mm:ss.SSS' UTC+8 within {CLOCK_SKEW:.0f} s of our clock",
            "documented",
            submitted is not None and sent - CLOCK_SKEW <= submitted <= answered + CLOCK_SKEW,
        )

        final = self._wait(task_id)
        out, usage = _object(final.get("output")), _object(final.get("usage"))
        status = out.get("task_status")
        self._check(
            "wait: SUCCEEDED with the documented output and usage",
            f"{status} output {_shape(out)} usage {_shape(usage)}"
            + (f" {out.get('code')}: {out.get('message')}" if status == "FAILED" else ""),
            "SUCCEEDED, output "
            + _names(OUTPUT_SUCCEEDED)
            + ", usage "
            + _names(USAGE_FIELDS)
            + " (SR an integer)",
            "documented",
            status == "SUCCEEDED"
            and set(out) == OUTPUT_SUCCEEDED
            and set(usage) == USAGE_FIELDS
            and type(usage.get("SR")) is int,
        )

        self._list_checks(task_id, create_request_id, sent, out)
        self._window_checks(task_id, sent)

        cancel = self._call("POST", f"{TASKS_PATH}/{task_id}/cancel")
        refused = CANCEL_REFUSED
        cancel_body = _json(cancel)
        self._check(
            "cancel of a finished task",
            f"{cancel.status_code} {cancel_body.get('code')} {cancel_body.get('message')!r}",
            f"{refused.status} {refused.code} {refused.message!r}",
            refused.basis,
            cancel.status_code == refused.status and cancel_body.get("code") == refused.code,
        )

        unknown_id = str(uuid.uuid4())
        unknown = self._call("GET", f"{TASKS_PATH}/{unknown_id}")
        unknown_out = _json(unknown).get("output")
        self._check(
            "query of an unknown task id",
            f"{unknown.status_code} output {unknown_out}",
            f"200 output {_names(UNKNOWN_OUTPUT_FIELDS)} with task_status UNKNOWN",
            "documented",
            unknown.status_code == 200 and unknown_out == {"task_id": unknown_id, "task_status": "UNKNOWN"},
        )

    def _wait(self, task_id: str) -> dict[str, Any]:
        """Query until the task ends (1 s, then slower up to the reference's 15 s), within the timeout."""
        interval = 1.0
        while True:
            answer = _json(self._call("GET", f"{TASKS_PATH}/{task_id}"))
            if _object(answer.get("output")).get("task_status") in ENDED:
                return answer
            if self._deadline - self._monotonic() <= interval:
                raise ProbeTimeout
            self._sleep(interval)
            interval = min(CALL_TIMEOUT, interval * 1.5)

    def _list_checks(self, task_id: str, request_id: str, sent: float, out: dict[str, Any]) -> None:
        now = datetime.fromtimestamp(self._clock(), API_TZ)
        listed = self._list(datetime.fromtimestamp(sent - 60, API_TZ), now + timedelta(seconds=60))
        data = _json(listed).get("data") or []
        entry = next((d for d in data if isinstance(d, dict) and d.get("task_id") == task_id), None)
        if not self._check(
            "list: a narrow window shows the task",
            f"{listed.status_code}, {len(data)} entries" + ("" if entry else ", not this task"),
            "200 with the task",
            "documented",
            listed.status_code == 200 and entry is not None,
        ):
            return
        assert entry is not None
        self._check(
            "list: entry fields",
            _names(set(entry)),
            _names(LIST_ENTRY_FIELDS) + " (the Java SDK's AsyncTaskInfo), no others",
            "documented",
            set(entry) == LIST_ENTRY_FIELDS,
        )
        times = {f: entry.get(f) for f in LIST_TIME_FIELDS}
        query_times = dict(
            zip(
                LIST_TIME_FIELDS,
                (out.get(f) for f in ("submit_time", "scheduled_time", "end_time")),
                strict=True,
            )
        )

        def agrees(field: str) -> bool:
            listed, queried = times[field], _api_time(query_times[field])
            return type(listed) is int and queried is not None and abs(listed / 1000 - queried) < 0.002

        self._check(
            "list: times are epoch milliseconds, as the query's",
            ", ".join(f"{f}={v!r}" for f, v in times.items()),
            "integers (ms) equal to submit_time, scheduled_time, end_time",
            "documented",
            all(agrees(f) for f in LIST_TIME_FIELDS),
        )
        self._check(
            "list: request_id is the create's",
            f"{entry.get('request_id')!r} (create: {request_id!r})",
            "the create call's request_id",
            "assumed",
            entry.get("request_id") == request_id,
        )

    def _window_checks(self, task_id: str, sent: float) -> None:
        created = datetime.fromtimestamp(sent, API_TZ)
        as_utc = self._list(created - timedelta(seconds=60), created + timedelta(seconds=60), UTC)
        utc_ids = [d.get("task_id") for d in _json(as_utc).get("data") or [] if isinstance(d, dict)]
        self._check(
            "list: the window is read in UTC+8",
            f"{as_utc.status_code}; the same minutes written in UTC "
            + ("show the task (the window is UTC)" if task_id in utc_ids else "do not show it"),
            f"start_time/end_time are UTC+{LIST_WINDOW_TZ_HOURS} wall times",
            "assumed",
            as_utc.status_code == 200 and task_id not in utc_ids,
        )
        now = datetime.fromtimestamp(self._clock(), API_TZ)
        day = self._list(now - timedelta(seconds=LIST_WINDOW_SECONDS), now)
        day_ids = [d.get("task_id") for d in _json(day).get("data") or [] if isinstance(d, dict)]
        self._check(
            "list: a window of exactly 24 h is taken",
            f"{day.status_code}" + (", with the task" if task_id in day_ids else ", without the task"),
            "200 with the task",
            "documented",
            day.status_code == 200 and task_id in day_ids,
        )
        longer = self._list(now - timedelta(hours=25), now)
        body = _json(longer)
        refused = LIST_WINDOW_REFUSED
        self._check(
            "list: a window of 25 h is refused",
            f"{longer.status_code} {body.get('code')} {body.get('message')!r}",
            f"{refused.status} {refused.code} {refused.message!r}",
            refused.basis,
            longer.status_code == refused.status and body.get("code") == refused.code,
        )


# ---------------------------------------------------------------------- helpers


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _names(fields: set[str] | frozenset[str]) -> str:
    return "{" + ", ".join(sorted(fields)) + "}"


def _shape(obj: dict[str, Any]) -> str:
    return _names(set(obj))


def _api_time(value: Any) -> float | None:
    """``YYYY-MM-DD HH:mm:ss.SSS`` in UTC+8 -> epoch seconds (None if not that)."""
    if not isinstance(value, str) or not TIME_TEXT.match(value):
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=API_TZ).timestamp()


def report(checks: list[Check], stream: TextIO) -> int:
    """Print the checks; the exit status."""
    for check in checks:
        print(f"[{'ok' if check.ok else 'DIFFERENT'}] {check.name}", file=stream)
        print(f"    service:  {check.answered}", file=stream)
        print(f"    emulator: {check.assumed} ({check.basis})", file=stream)
    different = [c for c in checks if not c.ok]
    verdict = "the service answers as the emulator assumes" if not different else f"{len(different)} differ"
    print(f"{len(checks)} checks: {verdict}", file=stream)
    return EXIT_DIFFERENT if different or not checks else EXIT_OK


@contextmanager
def served_clip() -> Iterator[str]:
    """A tiny real clip (2 s, made with PyAV) on a loopback HTTP server, for a local emulator."""
    from local.samplemedia import make_clip

    with tempfile.TemporaryDirectory(prefix="wanedit-conformance-") as root:
        make_clip(Path(root) / "clip.mp4", seconds=2, width=320, height=240, fps=8)

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        finally:
            server.shutdown()
            server.server_close()


def _is_loopback(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def run(
    base_url: str,
    api_key: str,
    *,
    video_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stream: TextIO | None = None,
) -> int:
    """The whole probe: its checks printed to ``stream`` (default stdout); the exit status."""
    stream = stream or sys.stdout
    if not video_url and not _is_loopback(base_url):
        print(
            "the service fetches the clip itself: pass --video-url with an https URL of a 2-10 s MP4",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(f"wanedit conformance against {base_url}: {COST}", file=stream)
    if video_url:
        return report(Probe(base_url, api_key, video_url, timeout=timeout).run(), stream)
    with served_clip() as local_url:
        return report(Probe(base_url, api_key, local_url, timeout=timeout).run(), stream)


def _main(args: argparse.Namespace) -> int:
    api_key = os.environ.get("DASHSCOPE_API_KEY", "")
    if not api_key:
        print("set DASHSCOPE_API_KEY to the key to probe with", file=sys.stderr)
        return EXIT_USAGE
    return run(args.base_url, api_key, video_url=args.video_url, timeout=args.timeout)


def register(commands: Any) -> None:
    """Add ``conformance`` to the ``wanedit`` sub-commands."""
    sub = commands.add_parser(
        "conformance",
        help="probe a DashScope endpoint: does it answer as the local emulator assumes?",
        description="One task (a 2 s clip at 720P, about 4 billed seconds), then query, list (a narrow"
        " window, UTC+8 or not, exactly 24 h, 25 h), cancel of the finished task and an unknown id:"
        " per check, what the service answered beside what the emulator assumes. The key comes from"
        " DASHSCOPE_API_KEY. Exit 0 when all agree, 1 on a difference or the timeout.",
    )
    sub.add_argument(
        "--base-url", required=True, help="the API's base URL (the emulator's, or the service's)"
    )
    sub.add_argument("--video-url", help="a public https URL of a 2-10 s MP4 (needed for the real service)")
    sub.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds for the whole probe ({DEFAULT_TIMEOUT:.0f})",
    )
    sub.set_defaults(run=_main, needs_target=False)
