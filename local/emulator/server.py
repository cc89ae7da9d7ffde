"""The DashScope (Model Studio) emulator for ``wan2.7-videoedit``: HTTP server + task engine.

Server choice: the standard library's ``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1
keep-alive). It needs no extra dependency and gives direct access to the socket, which the fault
injection needs (close a connection without an answer, hold one open); a WSGI stack such as werkzeug
hides the socket and always answers something.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import math
import os
import random
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .accounts import Account, Accounts, api_key_id, caller_uid
from .clock import Clock, ManualClock, WallClock, epoch_ms, fmt_cst, parse_compact_cst
from .contract import (
    CANCEL_REFUSED,
    CREATE_PATH,
    CREATE_RATE,
    LIST_PAGE_SIZE_MAX,
    LIST_WINDOW_REFUSED,
    LIST_WINDOW_SECONDS,
    MODEL,
    READ_RATE,
    REGION,
    RUNNING_CAP,
    TASK_TTL_SECONDS,
    TASKS_PATH,
    USER_API_UNIQUE_KEY,
    Refusal,
)
from .faults import RATE_LIMITED, EndpointFault, Faults, TaskFaults
from .render import MediaError, RenderResult, inspect_video, prepare_and_render
from .tasks import Scheduler, Task
from .validate import BadRequest, CreateRequest, validate_create

OSS_HOST = "dashscope-result-emu.oss-ap-southeast-1.aliyuncs.com"
RESULT_RE = re.compile(r"^/results/([0-9a-f-]{36})\.mp4$")
TASK_RE = re.compile(rf"^{TASKS_PATH}/([^/]+)$")
CANCEL_RE = re.compile(rf"^{TASKS_PATH}/([^/]+)/cancel$")
CONTROL_TASK_RE = re.compile(r"^/tasks/([^/]+)/(suspend|resume)$")


def _rid() -> str:
    return str(uuid.uuid4())


def _round2(x: float) -> float:
    return float(f"{x:.2f}")


class _Drop(Exception):
    """Close the connection without answering."""


class Emulator:
    """An in-process, API-faithful emulator of the ``wan2.7-videoedit`` HTTP API.

    One clock: every time it reports (``submit_time``, ``gmt_create``, ``end_time``, list windows,
    the ``Expires`` of result URLs) is read from ``clock``, the wall clock unless a test passes its
    ``ManualClock``, so the service's times always agree with the pipeline's. ``time_scale`` makes
    the service faster, never its clock: it divides the PENDING and run times of tasks (and the
    suspension times of faults); the 24 h lifetime of tasks and result URLs and the one-second rate
    windows stay as they are.

    Tasks, their query, list and cancel, the running cap and the rate limits are per *account*
    (``accounts.py``): ``api_key`` gives the keys of the ``default`` account, ``accounts`` more
    accounts. A key of another account sees ``UNKNOWN``.

    Args:
        api_key: the default account's key, or a list of its keys. Default: ``$DASHSCOPE_API_KEY`` or
            ``sk-emulator`` (none when ``accounts`` is given alone).
        clock: a ``ManualClock`` (tests) or any object with ``now() -> epoch seconds``; default: the
            wall clock.
        time_scale: the service runs this many times faster (durations divided by it); default 1.
        task_seconds: the service's run time of a task: a float, or a ``(lo, hi)`` range (seeded random).
        accounts: more accounts, name -> keys.
        pending_seconds: minimum time (the service's) a task stays PENDING.
        running_cap: at most this many RUNNING tasks per account.
        rate_limit: enforce, per account and per real (clock) second, 5 creates and 20 each of
            queries, lists and cancels (429 ``Throttling.RateQuota``).
        render_concurrency: how many renders may run at once (CPU guard; task times are unaffected).
        workdir: where results are written (default: a temp dir removed on ``stop``).
        public_base_url: base URL used in ``video_url`` (default: the bound ``base_url``).
        allow_remote_media: let the worker download from non-loopback hosts (default False: offline).
        seed: seed of the run-time randomness.
        prerendered: serve this one MP4 as every task's result, without fetching inputs or rendering
            (benchmarks: thousands of tasks without thousands of encodes). Usage reports its duration.
        result_bytes_per_second: pace result downloads to this rate (real time), as a WAN link would;
            None (default): as fast as loopback goes.
    """

    def __init__(
        self,
        api_key: str | Iterable[str] | None = None,
        clock: Clock | None = None,
        time_scale: float = 1.0,
        task_seconds: float | tuple[float, float] = (60.0, 120.0),
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accounts: Mapping[str, Iterable[str]] | None = None,
        pending_seconds: float = 5.0,
        running_cap: int = RUNNING_CAP,
        rate_limit: bool = True,
        create_rate: int = CREATE_RATE,
        query_rate: int = READ_RATE,
        render_concurrency: int = 2,
        workdir: str | Path | None = None,
        public_base_url: str | None = None,
        allow_remote_media: bool = False,
        seed: int = 0,
        prerendered: str | Path | None = None,
        result_bytes_per_second: float | None = None,
    ) -> None:
        if api_key is None and not accounts:
            api_key = os.environ.get("DASHSCOPE_API_KEY") or "sk-emulator"
        default_keys = [] if api_key is None else [api_key] if isinstance(api_key, str) else list(api_key)
        self.accounts = Accounts(default_keys, accounts)
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.clock: Clock = clock if clock is not None else WallClock()
        self.time_scale = float(time_scale)
        self.task_seconds = task_seconds
        self.pending_seconds = float(pending_seconds)
        self.rate_limit = rate_limit
        self.create_rate = create_rate
        self.query_rate = query_rate
        self.allow_remote_media = allow_remote_media
        self.host, self._port = host, port
        self._public_base_url = public_base_url
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="wanemu-"))
        self.results_dir = self.workdir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.faults = Faults()
        self._rng = random.Random(seed)
        self.result_bytes_per_second = result_bytes_per_second
        self._prerendered: RenderResult | None = None
        if prerendered is not None:
            path = Path(prerendered)
            info = inspect_video(path)
            self._prerendered = RenderResult(
                path, info["width"], info["height"], info["duration"], info["duration"], info["has_audio"]
            )
        self._secret = os.urandom(16)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._render_sem = threading.Semaphore(max(1, render_concurrency))
        self._sched = Scheduler(running_cap, self._start_worker)
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._counters: dict[str, Any] = {}
        self._reset_counters()
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        emu = self

        class Handler(_Handler):
            emulator = emu

        self._httpd = ThreadingHTTPServer((self.host, self._port), Handler)
        self._httpd.daemon_threads = True
        t = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        t.start()
        ticker = threading.Thread(target=self._ticker, daemon=True, name="wanemu-ticker")
        ticker.start()
        self._threads = [t, ticker]
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        with self._lock:
            workers = [t.worker for t in self._sched.tasks.values() if t.worker is not None]
        for w in workers:
            w.join(timeout=10)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the emulator first"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        """``base_url + "/api/v1"``: what ``dashscope.base_http_api_url`` should be set to."""
        return self.base_url + "/api/v1"

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Advance a ManualClock and process what happened meanwhile."""
        adv = getattr(self.clock, "advance", None)
        if adv is None:
            raise TypeError("advance() needs a ManualClock")
        adv(seconds)
        self.tick()

    def tick(self) -> None:
        with self._lock:
            self._sched.tick(self.clock.now())

    def _ticker(self) -> None:
        while not self._stop.wait(0.02):
            self.tick()

    def _span(self, service_seconds: float) -> float:
        """A duration of the service as it passes on the clock: shortened by the time scale."""
        return service_seconds / self.time_scale

    # ------------------------------------------------------------------ counters
    def _reset_counters(self) -> None:
        self._counters = {
            "requests": 0,
            "creates": 0,
            "tasks_created": 0,
            "workload_tasks_created": 0,
            "creates_rejected": 0,
            "queries": 0,
            "cancels": 0,
            "lists": 0,
            "result_downloads": 0,
            "throttled": 0,
            "auth_failures": 0,
            "faults_injected": 0,
            "per_key": {},
            "per_account": {},
            "created_bodies": [],
            "created_tasks": [],
        }

    def _count(self, name: str, key: str | None = None, n: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n
            if key is not None:
                pk = self._counters["per_key"].setdefault(key, {})
                pk[name] = pk.get(name, 0) + n
                account = self.accounts.of_key(key)
                if account is not None:
                    pa = self._counters["per_account"].setdefault(account.name, {})
                    pa[name] = pa.get(name, 0) + n

    @property
    def counters(self) -> dict[str, Any]:
        """A snapshot (deep copy) of the counters, plus ``max_running_seen`` (max over accounts) and
        ``running_now``."""
        with self._lock:
            snap = copy.deepcopy(self._counters)
            seen = self._sched.max_running_seen
            snap["max_running_seen"] = max(seen.values(), default=0)
            snap["max_running_seen_per_account"] = dict(seen)
            snap["running_now"] = sum(len(v) for v in self._sched.running.values())
            return snap

    def reset(self) -> None:
        """Forget tasks, counters, rate windows and faults (accounts, clock and config stay)."""
        with self._lock:
            self._sched = Scheduler(self._sched.running_cap, self._start_worker)
            self._windows.clear()
            self._reset_counters()
        self.faults.clear()

    # ------------------------------------------------------------------ tasks
    def task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._sched.tasks.get(task_id)

    def tasks(self) -> list[Task]:
        with self._lock:
            return sorted(self._sched.tasks.values(), key=lambda t: t.seq)

    def create_workload_task(
        self, body: dict[str, Any], *, account: str | None = None, run_seconds: float | None = None
    ) -> str:
        """A task made by another workload of ``account`` (default: the default account), not over HTTP.

        What the real service holds beside the pipeline's own tasks: another application, a console
        user or a colleague's key of the same account. It shares the account's list, running cap and
        limits; it never consumes the fault queues and is not counted in ``tasks_created``.
        ``body`` is a create body (validated as the create endpoint does: ``BadRequest`` if wrong).
        """
        owner = self.accounts.get(account)
        request = validate_create(body)
        run = None if run_seconds is None else float(run_seconds)
        task = self._new_task(owner, owner.workload_key(), body, request, TaskFaults(run_seconds=run))
        self._count("workload_tasks_created")
        return task.task_id

    def lose_task(self, task_id: str) -> None:
        """The service loses a task: queries answer UNKNOWN, the list and the cap forget it.

        It stays counted as made (``tasks_created``): what a pipeline must survive, not a cancel.
        """
        with self._lock:
            now = self.clock.now()
            self._sched.tick(now)
            self._sched.forget(self._sched.tasks[task_id], now)

    def suspend(self, task_id: str, seconds: float | None = None) -> None:
        """Put a PENDING or RUNNING task in SUSPENDED for ``seconds`` (the service's), or until ``resume``."""
        with self._lock:
            now = self.clock.now()
            self._sched.tick(now)
            task = self._sched.tasks[task_id]
            until = None if seconds is None else now + self._span(float(seconds))
            self._sched.suspend(task, now, until)

    def resume(self, task_id: str) -> None:
        """Take a SUSPENDED task back where it was (the queue, or its run)."""
        with self._lock:
            now = self.clock.now()
            self._sched.tick(now)
            self._sched.resume(self._sched.tasks[task_id], now)
            self._sched.tick(now)

    def _new_task(
        self, account: Account, key: str, body: dict[str, Any], request: CreateRequest, faults: TaskFaults
    ) -> Task:
        with self._lock:
            now = self.clock.now()
            self._sched.tick(now)
            self._sched.seq += 1
            service_seconds = faults.run_seconds if faults.run_seconds is not None else self._pick_seconds()
            task = Task(
                seq=self._sched.seq,
                task_id=str(uuid.uuid4()),
                account=account.name,
                api_key=key,
                request_id=_rid(),
                body=body,
                prompt=request.prompt,
                prompt_used=request.prompt_used,
                media=request.media,
                params=request.params,
                submit_at=now,
                ready_at=now + self._span(self.pending_seconds),
                run_seconds=self._span(service_seconds),
                outcome=faults.outcome,
            )
            self._sched.add(task)
            if faults.suspend_seconds is not None:
                self._sched.suspend(task, now, now + self._span(faults.suspend_seconds))
            self._sched.tick(now)
            return task

    def wait_settled(self, task_id: str, timeout: float = 120.0) -> str:
        """Block until a task whose run is over has its outcome (render finished); returns status."""
        t = self.task(task_id)
        if t is None:
            return "UNKNOWN"
        self._settle(t, timeout)
        return t.status

    def _settle(self, t: Task, timeout: float = 120.0) -> None:
        with self._lock:
            if t.status != "ENDED" or Scheduler.settle(t):
                return
        if not t.done.wait(timeout):
            with self._lock:
                if not t.done.is_set():
                    t.error = ("InternalError", "The task timed out in the emulator's renderer.")
                    t.done.set()
        with self._lock:
            Scheduler.settle(t)

    def _visible(self, t: Task | None, account: Account, now: float) -> bool:
        """The account's task, not yet past its 24 h lifetime."""
        return t is not None and t.account == account.name and now - t.submit_at <= TASK_TTL_SECONDS

    def _pick_seconds(self) -> float:
        ts = self.task_seconds
        if isinstance(ts, int | float):
            return float(ts)
        lo, hi = ts
        return self._rng.uniform(float(lo), float(hi))

    def _start_worker(self, t: Task) -> None:
        if t.outcome is not None:  # a fault decides the outcome: nothing to render
            t.done.set()
            return
        if self._prerendered is not None:  # no-render mode: every task's result is the one file
            t.result = copy.copy(self._prerendered)
            t.done.set()
            return
        th = threading.Thread(target=self._work, args=(t,), daemon=True, name=f"wanemu-{t.task_id[:8]}")
        t.worker = th
        th.start()

    def _work(self, t: Task) -> None:
        try:
            with self._render_sem:
                if self._stop.is_set():
                    raise MediaError("InternalError", "The emulator is shutting down.")
                t.result = prepare_and_render(
                    t.task_id,
                    t.media,
                    t.params,
                    t.prompt_used,
                    self.results_dir,
                    allow_remote=self.allow_remote_media,
                )
        except MediaError as exc:
            t.error = (exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - any renderer crash becomes a FAILED task, like the service
            t.error = (
                "InternalError.Algo",
                f"An internal error occurred during the model inference: {exc!r}",
            )
        finally:
            t.done.set()

    # ------------------------------------------------------------------ rate limit
    def _throttled(self, account: Account, kind: str, now: float) -> bool:
        """Per account and endpoint, at most the limit within any one second of the clock."""
        if not self.rate_limit:
            return False
        limit = self.create_rate if kind == "create" else self.query_rate
        with self._lock:
            w = self._windows.setdefault((account.name, kind), deque())
            while w and w[0] <= now - 1.0:
                w.popleft()
            if len(w) >= limit:
                return True
            w.append(now)
            return False

    # ------------------------------------------------------------------ result URLs
    def _sign(self, task_id: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"GET\n{task_id}\n{expires}".encode(), hashlib.sha1).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def result_url(self, t: Task, base: str | None = None) -> str:
        assert t.end_at is not None
        expires = int(t.end_at + TASK_TTL_SECONDS)
        root = base or self._public_base_url or self.base_url
        sig = self._sign(t.task_id, expires)
        return f"{root}/results/{t.task_id}.mp4?Expires={expires}&OSSAccessKeyId=emulator&Signature={sig}"

    def result_path(self, task_id: str) -> Path:
        """The file served for a task's result URL (its render, or the shared pre-rendered file)."""
        with self._lock:
            t = self._sched.tasks.get(task_id)
            if t is not None and t.result is not None:
                return t.result.path
        return self.results_dir / f"{task_id}.mp4"

    # ------------------------------------------------------------------ views
    def task_output(self, t: Task) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": t.task_id,
            "task_status": t.shown_status,
            "submit_time": fmt_cst(t.submit_at),
        }
        if t.scheduled_at is not None:
            out["scheduled_time"] = fmt_cst(t.scheduled_at)
        if t.final and t.end_at is not None:
            out["end_time"] = fmt_cst(t.end_at)
        if t.status == "SUCCEEDED":
            out["orig_prompt"] = t.prompt if t.prompt is not None else ""
            out["video_url"] = self.result_url(t)
        elif t.status == "FAILED":
            out["code"] = t.code
            out["message"] = t.message
        return out

    def list_entry(self, t: Task) -> dict[str, Any]:
        """One task as ``GET /api/v1/tasks`` shows it: the documented fields (``contract``), no others."""
        entry: dict[str, Any] = {
            "api_key_id": api_key_id(t.api_key),
            "caller_parent_id": self.accounts.get(t.account).uid,
            "caller_uid": caller_uid(t.api_key),
        }
        if t.final and t.end_at is not None:
            entry["end_time"] = epoch_ms(t.end_at)
        entry["gmt_create"] = epoch_ms(t.submit_at)
        entry["model_name"] = MODEL
        entry["region"] = REGION
        entry["request_id"] = t.request_id
        if t.scheduled_at is not None:
            entry["start_time"] = epoch_ms(t.scheduled_at)
        entry["status"] = t.shown_status
        entry["task_id"] = t.task_id
        entry["user_api_unique_key"] = USER_API_UNIQUE_KEY
        return entry

    def usage(self, t: Task) -> dict[str, Any]:
        assert t.result is not None
        i, o = _round2(t.result.input_duration), _round2(t.result.output_duration)
        return {
            "duration": _round2(i + o),
            "input_video_duration": i,
            "output_video_duration": o,
            "video_count": 1,
            "SR": 1080 if t.params["resolution"] == "1080P" else 720,
        }


# ====================================================================== HTTP
class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    server_version = "envoy"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -------------------------------------------------------------- plumbing
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, payload: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        rid = obj.get("request_id")
        extra = {"X-Request-Id": rid} if isinstance(rid, str) else None
        self._send(
            status, json.dumps(obj, ensure_ascii=False).encode(), "application/json;charset=UTF-8", extra
        )

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"request_id": _rid(), "code": code, "message": message})

    def _xml_error(self, status: int, code: str, message: str, extra: str = "") -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
            f"  <RequestId>{uuid.uuid4().hex[:24].upper()}</RequestId>\n  <HostId>{OSS_HOST}</HostId>\n"
            f"{extra}</Error>\n"
        ).encode()
        self._send(status, body, "application/xml", {"x-oss-request-id": uuid.uuid4().hex[:24].upper()})

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _auth(self) -> tuple[str, Account] | None:
        """The caller's key and the account it belongs to; None when refused (answered here)."""
        emu = self.emulator
        auth = self.headers.get("Authorization") or ""
        m = re.match(r"^\s*Bearer\s+(\S+)\s*$", auth, re.IGNORECASE)
        if not m:
            emu._count("auth_failures")
            self._error(401, "InvalidApiKey", "No API-key provided.")
            return None
        key = m.group(1)
        account = emu.accounts.of_key(key)
        if account is None:
            emu._count("auth_failures")
            self._error(401, "InvalidApiKey", "Invalid API-key provided.")
            return None
        return key, account

    def _refuse(self, refusal: Refusal) -> None:
        self._error(refusal.status, refusal.code, refusal.message)

    def _throttle(self, account: Account, key: str, kind: str) -> bool:
        """True when the account's rate limit for ``kind`` refused the request (answered here)."""
        emu = self.emulator
        if not emu._throttled(account, kind, emu.clock.now()):
            return False
        emu._count("throttled", key)
        self._error(429, *RATE_LIMITED)
        return True

    def _apply_fault(self, endpoint: str, key: str | None) -> bool:
        """Consult the fault list. Returns True if the request was answered (or dropped) by a fault.

        ``create`` consults it itself: http/drop before the task exists, delay/hang/drop_after_create
        after."""
        emu = self.emulator
        fault = emu.faults.take(endpoint)
        if fault is None:
            return False
        return self._run_fault(fault, endpoint, key)

    def _run_fault(self, fault: EndpointFault, endpoint: str, key: str | None) -> bool:
        emu = self.emulator
        emu._count("faults_injected", key)
        if fault.kind == "http":
            if endpoint == "result":
                if fault.status == 403:
                    self._xml_error(403, "AccessDenied", "Request has expired.")
                else:
                    self._xml_error(
                        fault.status, fault.code or "InternalError", fault.message or "Internal error."
                    )
            else:
                code, message = fault.error_body_fields()
                if fault.status == 429:
                    emu._count("throttled", key)
                self._error(fault.status, code, message)
            return True
        if fault.kind == "drop":
            self._drop()
            return True
        if fault.kind in ("delay", "hang") and fault.seconds > 0:
            emu._stop.wait(fault.seconds)
        if fault.kind in ("hang", "drop_after_create"):
            self._drop()
            return True
        return False  # delay: carry on and answer normally

    # -------------------------------------------------------------- dispatch
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        emu = self.emulator
        body = self._body() if self.command in ("POST", "DELETE") else b""
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        emu._count("requests")
        try:
            if path.startswith("/_emulator"):
                self._control(path, body)
                return
            m = RESULT_RE.match(path)
            if m and self.command in ("GET", "HEAD"):
                self._result(m.group(1), query)
                return
            if not path.startswith("/api/v1/"):
                self._error(404, "NotFound", f"The path {path} does not exist.")
                return
            if path == CREATE_PATH and self.command == "POST":
                self._create(body)
            elif (m := CANCEL_RE.match(path)) and self.command == "POST":
                self._cancel(m.group(1))
            elif path == TASKS_PATH and self.command == "GET":
                self._list(query)
            elif (m := TASK_RE.match(path)) and self.command == "GET":
                self._query(m.group(1))
            else:
                self._error(400, "InvalidParameter", "url error, please check url!")
        except _Drop:
            self._drop()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -------------------------------------------------------------- API
    def _create(self, raw: bytes) -> None:
        emu = self.emulator
        caller = self._auth()
        if caller is None:
            return
        key, account = caller
        emu._count("creates", key)
        if (self.headers.get("X-DashScope-Async") or "").strip().lower() != "enable":
            emu._count("creates_rejected", key)
            self._error(403, "AccessDenied", "current user api does not support synchronous calls")
            return
        fault = emu.faults.take("create")
        if fault is not None and fault.kind in ("http", "drop"):
            emu._count("creates_rejected", key)
            self._run_fault(fault, "create", key)
            return
        if self._throttle(account, key, "create"):
            emu._count("creates_rejected", key)
            return
        ctype = (self.headers.get("Content-Type") or "").lower()
        try:
            if not ctype.startswith("application/json"):
                raise BadRequest("Content-Type must be application/json.")
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(f"The request body is not valid JSON: {exc}.") from exc
            req = validate_create(body)
        except BadRequest as exc:
            emu._count("creates_rejected", key)
            self._error(400, exc.code, exc.message)
            return
        t = emu._new_task(account, key, body, req, emu.faults.for_new_task())
        emu._count("tasks_created", key)
        with emu._lock:
            emu._counters["created_bodies"].append(copy.deepcopy(body))
            emu._counters["created_tasks"].append(
                {
                    "task_id": t.task_id,
                    "request_id": t.request_id,
                    "account": account.name,
                    "api_key_id": api_key_id(key),
                    "body": body,
                }
            )
        if fault is not None and self._run_fault(fault, "create", key):
            return
        self._json(
            200, {"output": {"task_status": "PENDING", "task_id": t.task_id}, "request_id": t.request_id}
        )

    def _query(self, task_id: str) -> None:
        emu = self.emulator
        caller = self._auth()
        if caller is None:
            return
        key, account = caller
        emu._count("queries", key)
        if self._apply_fault("query", key) or self._throttle(account, key, "query"):
            return
        emu.tick()
        t = emu.task(task_id)
        if t is None or not emu._visible(t, account, emu.clock.now()):
            self._json(200, {"request_id": _rid(), "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
            return
        emu._settle(t)
        with emu._lock:
            resp: dict[str, Any] = {"request_id": _rid(), "output": emu.task_output(t)}
            if t.status == "SUCCEEDED":
                resp["usage"] = emu.usage(t)
        self._json(200, resp)

    def _cancel(self, task_id: str) -> None:
        emu = self.emulator
        caller = self._auth()
        if caller is None:
            return
        key, account = caller
        emu._count("cancels", key)
        if self._apply_fault("cancel", key) or self._throttle(account, key, "cancel"):
            return
        now = emu.clock.now()
        with emu._lock:
            emu._sched.tick(now)
            t = emu._sched.tasks.get(task_id)
            ok = t is not None and emu._visible(t, account, now) and t.status == "PENDING"
            if ok:
                assert t is not None
                emu._sched.cancel_pending(t, now)
        if ok:
            self._json(200, {"request_id": _rid()})
        else:
            self._refuse(CANCEL_REFUSED)

    def _list(self, q: dict[str, str]) -> None:
        emu = self.emulator
        caller = self._auth()
        if caller is None:
            return
        key, account = caller
        emu._count("lists", key)
        if self._apply_fault("list", key) or self._throttle(account, key, "list"):
            return
        now = emu.clock.now()
        try:
            end = parse_compact_cst(q["end_time"]) if q.get("end_time") else now
            start = parse_compact_cst(q["start_time"]) if q.get("start_time") else end - LIST_WINDOW_SECONDS
        except ValueError:
            self._error(
                400, "InvalidParameter", "The start_time/end_time must be formatted as YYYYMMDDhhmmss."
            )
            return
        if end < start:
            self._error(400, "InvalidParameter", "The start_time must not be later than the end_time.")
            return
        if end - start > LIST_WINDOW_SECONDS:
            self._refuse(LIST_WINDOW_REFUSED)
            return
        try:
            page_no = int(q.get("page_no") or 1)
            page_size = int(q.get("page_size") or 10)
        except ValueError:
            self._error(400, "InvalidParameter", "The page_no/page_size must be integers.")
            return
        if page_no < 1 or not 1 <= page_size <= LIST_PAGE_SIZE_MAX:
            self._error(
                400,
                "InvalidParameter",
                f"The page_no must be >= 1 and page_size in [1, {LIST_PAGE_SIZE_MAX}].",
            )
            return
        wanted = {
            "status": (q.get("status") or "").upper() or None,
            "model_name": q.get("model_name") or None,
            "api_key_id": q.get("api_key_id") or None,
            "region": q.get("region") or None,
        }
        emu.tick()
        with emu._lock:
            mine = [t for t in emu._sched.tasks.values() if emu._visible(t, account, now)]
        for t in mine:
            if t.status == "ENDED":
                emu._settle(t)
        rows = []
        with emu._lock:
            for t in sorted(mine, key=lambda t: t.seq, reverse=True):  # newest first
                if not start <= t.submit_at < end + 1.0:  # the window's times are whole seconds
                    continue
                entry = emu.list_entry(t)
                if all(value is None or entry[field] == value for field, value in wanted.items()):
                    rows.append(entry)
        total = len(rows)
        page = rows[(page_no - 1) * page_size : page_no * page_size]
        self._json(
            200,
            {
                "request_id": _rid(),
                "data": page,
                "page_no": page_no,
                "page_size": page_size,
                "total": total,
                "total_page": math.ceil(total / page_size) if total else 0,
            },
        )

    # -------------------------------------------------------------- result files
    def _result(self, task_id: str, q: dict[str, str]) -> None:
        emu = self.emulator
        emu._count("result_downloads")
        if self._apply_fault("result", None):
            return
        expires_s, sig = q.get("Expires", ""), q.get("Signature", "")
        if not expires_s.isdigit() or not sig:
            self._xml_error(403, "AccessDenied", "You have no right to access this object.")
            return
        expires = int(expires_s)
        if not hmac.compare_digest(sig, emu._sign(task_id, expires)):
            self._xml_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
            return
        now = emu.clock.now()
        if now > expires:
            exp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires))
            srv = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
            self._xml_error(
                403,
                "AccessDenied",
                "Request has expired.",
                f"  <Expires>{exp}</Expires>\n  <ServerTime>{srv}</ServerTime>\n",
            )
            return
        path = emu.result_path(task_id)
        if not path.is_file():
            self._xml_error(404, "NoSuchKey", "The specified key does not exist.")
            return
        self._send_file(path)

    def _send_file(self, path: Path) -> None:
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.match(r"^bytes=(\d*)-(\d*)$", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                self._xml_error(416, "InvalidRange", "The requested range is not satisfiable.")
                return
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                self._send(416, b"", "application/xml", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        length = end - start + 1
        etag = (
            '"' + hashlib.md5(f"{path.name}{size}".encode(), usedforsecurity=False).hexdigest().upper() + '"'
        )
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        rate = self.emulator.result_bytes_per_second
        began = time.monotonic()
        with path.open("rb") as fh:
            fh.seek(start)
            left = length
            while left > 0:
                chunk = fh.read(min(256 * 1024, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
                if rate:
                    ahead = (length - left) / rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    # -------------------------------------------------------------- control API
    def _control(self, path: str, raw: bytes) -> None:
        emu = self.emulator
        try:
            body = json.loads(raw.decode() or "{}") if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._json(400, {"error": "body must be JSON"})
            return
        cmd = path[len("/_emulator") :]
        if cmd == "/counters" and self.command == "GET":
            self._json(200, emu.counters)
        elif cmd == "/accounts" and self.command == "GET":
            self._json(200, {"accounts": emu.accounts.describe()})
        elif cmd == "/faults" and self.command == "GET":
            self._json(200, emu.faults.snapshot())
        elif cmd == "/faults" and self.command == "POST":
            try:
                emu.faults.apply_json(body)
            except (ValueError, TypeError, KeyError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, emu.faults.snapshot())
        elif cmd in ("/faults", "/faults/clear") and self.command in ("DELETE", "POST"):
            emu.faults.clear()
            self._json(200, emu.faults.snapshot())
        elif cmd == "/reset" and self.command == "POST":
            emu.reset()
            self._json(200, {"ok": True})
        elif cmd == "/clock" and self.command == "GET":
            now = emu.clock.now()
            self._json(
                200,
                {
                    "now": now,
                    "cst": fmt_cst(now),
                    "manual": isinstance(emu.clock, ManualClock),
                    "time_scale": emu.time_scale,
                },
            )
        elif cmd == "/clock/advance" and self.command == "POST":
            try:
                emu.advance(float(body.get("seconds", 0)))
            except (TypeError, ValueError) as exc:
                self._json(400, {"error": str(exc)})
                return
            now = emu.clock.now()
            self._json(200, {"now": now, "cst": fmt_cst(now)})
        elif cmd == "/tasks" and self.command == "GET":
            with emu._lock:
                rows = [
                    {
                        "task_id": t.task_id,
                        "status": t.status,
                        "account": t.account,
                        "api_key_id": api_key_id(t.api_key),
                        "request_id": t.request_id,
                        "submit_time": fmt_cst(t.submit_at),
                        "run_seconds": t.run_seconds,
                        "code": t.code,
                        "message": t.message,
                    }
                    for t in sorted(emu._sched.tasks.values(), key=lambda t: t.seq)
                ]
            self._json(200, {"tasks": rows})
        elif cmd == "/tasks" and self.command == "POST":
            if not isinstance(body.get("body"), dict):
                self._json(400, {"error": 'expected {"body": <a create body>, "account": NAME}'})
                return
            try:
                task_id = emu.create_workload_task(
                    body["body"], account=body.get("account"), run_seconds=body.get("run_seconds")
                )
            except BadRequest as exc:
                self._json(400, {"error": exc.message})
                return
            except (KeyError, TypeError, ValueError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"task_id": task_id})
        elif (m := CONTROL_TASK_RE.match(cmd)) and self.command == "POST":
            task_id, action = m.groups()
            try:
                if action == "suspend":
                    seconds = body.get("seconds")
                    emu.suspend(task_id, None if seconds is None else float(seconds))
                else:
                    emu.resume(task_id)
            except KeyError:
                self._json(404, {"error": f"no task {task_id}"})
                return
            except (TypeError, ValueError) as exc:
                self._json(400, {"error": str(exc)})
                return
            t = emu.task(task_id)
            self._json(200, {"task_id": task_id, "status": t.status if t else "UNKNOWN"})
        else:
            self._json(404, {"error": f"unknown control endpoint {self.command} {path}"})
