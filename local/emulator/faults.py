"""Fault injection: what the emulator should do wrong, and how often.

Three families, all thread-safe and consumable from code (``emu.faults``), the CLI (``--fault SPEC``)
and the control API (``POST /_emulator/faults``):

1. Endpoint faults (``add``): for the next N requests to an endpoint (``create``, ``query``,
   ``cancel``, ``list``, ``result`` or ``any``), after the API-key check:
   - ``kind="http"``: answer ``status`` (429/500/502/503/504, or any) with a realistic JSON error
     (``result``: an OSS-like XML error; ``status=403`` on ``result`` means "Request has expired.").
     ``code`` picks the error code: e.g. ``Throttling.AllocationQuota`` (429, the account's quota is
     used up) rather than the plain ``Throttling`` of a rate refusal.
   - ``kind="delay"``: hold the connection ``seconds`` (real) and then answer normally.
     On ``create`` the task is created before the hold (the answer just comes late).
   - ``kind="hang"``: hold ``seconds`` then close the socket without answering.
     On ``create`` the task IS created (the answer never comes).
   - ``kind="drop"``: close the socket at once without answering; nothing is created.
   - ``kind="drop_after_create"``: (``create`` only) create the task, then close without answering.
2. Task outcome faults: ``fail_next(count, code, message)`` makes the next created tasks end FAILED;
   ``cancel_next(count)`` makes them end CANCELED (at the end of their run); ``suspend_next(count,
   seconds)`` makes them SUSPENDED from their creation for ``seconds`` (then they queue as usual).
3. Run time overrides: ``task_seconds_queue`` (a deque of floats); each create pops one, if any,
   as that task's run time.

Durations of families 2 and 3 are the service's; the emulator's time scale divides them.
Tasks made out of band (``Emulator.create_workload_task``) never consume families 2 and 3.

CLI / control-API spec strings (``ENDPOINT=ACTION[xN]``, N defaults to 1, ``xinf`` = forever):
  ``create=429``  ``query=503x3``  ``list=500``  ``cancel=502``  ``result=403`` (expired) ``result=500``
  ``create=429:Throttling.AllocationQuota`` (STATUS:CODE[:MESSAGE])
  ``create=delay:2.5``  ``create=hang:5``  ``query=drop``  ``create=drop_after_create``
  ``task=FAILED[:CODE[:MESSAGE]][xN]``  ``task=CANCELED[xN]``  ``task=SUSPENDED[:SECONDS][xN]``
  ``task_seconds=SECONDS[xN]``
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

ENDPOINTS = ("create", "query", "cancel", "list", "result", "any")
KINDS = ("http", "delay", "hang", "drop", "drop_after_create")

QUOTA_EXHAUSTED = (
    "Throttling.AllocationQuota",
    "Allocated quota exceeded, please increase your quota limit.",
)
RATE_LIMITED = ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
# Messages of the codes a fault may name without one.
KNOWN_CODES: dict[str, str] = dict([QUOTA_EXHAUSTED, RATE_LIMITED])
DEFAULT_SUSPEND_SECONDS = 60.0

# Realistic DashScope gateway errors per HTTP status.
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("InvalidParameter", "The request parameter is invalid."),
    403: ("AccessDenied", "Access denied."),
    429: ("Throttling", "Requests throttling triggered."),
    500: (
        "InternalError",
        "An internal error has occured, please try again later or contact service support.",
    ),
    502: ("BadGateway", "Bad gateway, please try again later."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable, please try again later."),
    504: ("RequestTimeOut", "Request timed out, please try again later."),
}


@dataclass
class EndpointFault:
    endpoint: str
    kind: str = "http"
    status: int = 500
    code: str | None = None
    message: str | None = None
    seconds: float = 0.0
    times: float = 1  # math.inf = forever

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; one of {ENDPOINTS}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.kind == "drop_after_create" and self.endpoint != "create":
            raise ValueError("drop_after_create applies to the create endpoint only")

    def error_body_fields(self) -> tuple[str, str]:
        code, message = HTTP_ERRORS.get(self.status, ("InternalError", "An internal error has occured."))
        if self.code:
            code, message = self.code, KNOWN_CODES.get(self.code, message)
        return code, self.message or message

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["times"] = "inf" if math.isinf(self.times) else int(self.times)
        return d


@dataclass
class TaskOutcome:
    status: str  # FAILED | CANCELED
    code: str = "InternalError.Algo"
    message: str = "An internal error occurred during the model inference."


@dataclass
class TaskFaults:
    """What the faults decide for one new task."""

    outcome: TaskOutcome | None = None
    run_seconds: float | None = None  # the service's run time, overriding the emulator's
    suspend_seconds: float | None = None  # SUSPENDED from creation, this long


@dataclass
class Faults:
    endpoint_faults: list[EndpointFault] = field(default_factory=list)
    task_outcomes: deque[TaskOutcome] = field(default_factory=deque)
    task_seconds_queue: deque[float] = field(default_factory=deque)
    suspensions: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- endpoint faults ------------------------------------------------------------------------
    def add(
        self,
        endpoint: str,
        kind: str = "http",
        *,
        status: int = 500,
        code: str | None = None,
        message: str | None = None,
        seconds: float = 0.0,
        times: float = 1,
    ) -> EndpointFault:
        fault = EndpointFault(endpoint, kind, int(status), code, message, float(seconds), times)
        with self._lock:
            self.endpoint_faults.append(fault)
        return fault

    def take(self, endpoint: str) -> EndpointFault | None:
        """Consume and return the first fault matching ``endpoint`` (or ``any``), if any."""
        with self._lock:
            for fault in self.endpoint_faults:
                if fault.endpoint in (endpoint, "any"):
                    if fault.kind == "drop_after_create" and endpoint != "create":
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self.endpoint_faults.remove(fault)
                    return fault
        return None

    # -- task faults ----------------------------------------------------------------------------
    def fail_next(self, count: int = 1, code: str | None = None, message: str | None = None) -> None:
        outcome = TaskOutcome("FAILED")
        if code:
            outcome.code = code
        if message:
            outcome.message = message
        with self._lock:
            self.task_outcomes.extend([outcome] * count)

    def cancel_next(self, count: int = 1) -> None:
        with self._lock:
            self.task_outcomes.extend([TaskOutcome("CANCELED", "", "")] * count)

    def suspend_next(self, count: int = 1, seconds: float = DEFAULT_SUSPEND_SECONDS) -> None:
        with self._lock:
            self.suspensions.extend([float(seconds)] * count)

    def for_new_task(self) -> TaskFaults:
        """Consume what the next created task gets (one of each queue, if any)."""
        with self._lock:
            return TaskFaults(
                outcome=self.task_outcomes.popleft() if self.task_outcomes else None,
                run_seconds=self.task_seconds_queue.popleft() if self.task_seconds_queue else None,
                suspend_seconds=self.suspensions.popleft() if self.suspensions else None,
            )

    # -- whole ----------------------------------------------------------------------------------
    def clear(self) -> None:
        with self._lock:
            self.endpoint_faults.clear()
            self.task_outcomes.clear()
            self.task_seconds_queue.clear()
            self.suspensions.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "endpoint_faults": [f.to_dict() for f in self.endpoint_faults],
                "task_outcomes": [asdict(o) for o in self.task_outcomes],
                "task_seconds_queue": list(self.task_seconds_queue),
                "suspensions": list(self.suspensions),
            }

    def add_spec(self, spec: str) -> None:
        """Apply one ``ENDPOINT=ACTION[xN]`` spec string (see the module doc)."""
        if "=" not in spec:
            raise ValueError(f"fault spec {spec!r}: expected ENDPOINT=ACTION[xN]")
        target, action = (s.strip() for s in spec.split("=", 1))
        times: float = 1
        head, sep, tail = action.rpartition("x")
        if sep and (tail.isdigit() or tail == "inf") and head:
            times = math.inf if tail == "inf" else int(tail)
            action = head
        if target == "task":
            parts = action.split(":", 2)
            status = parts[0].upper()
            n = 1 if math.isinf(times) else int(times)
            if status == "FAILED":
                self.fail_next(n, parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)
            elif status == "CANCELED":
                self.cancel_next(n)
            elif status == "SUSPENDED":
                self.suspend_next(n, float(parts[1]) if len(parts) > 1 else DEFAULT_SUSPEND_SECONDS)
            else:
                raise ValueError(f"fault spec {spec!r}: task outcome must be FAILED, CANCELED or SUSPENDED")
            return
        if target == "task_seconds":
            n = 1 if math.isinf(times) else int(times)
            with self._lock:
                self.task_seconds_queue.extend([float(action)] * n)
            return
        if target not in ENDPOINTS:
            raise ValueError(f"fault spec {spec!r}: unknown endpoint {target!r}")
        kind, _, arg = action.partition(":")
        if kind.isdigit():
            code, _, message = arg.partition(":")
            self.add(
                target, "http", status=int(kind), code=code or None, message=message or None, times=times
            )
        elif kind in ("delay", "hang"):
            self.add(target, kind, seconds=float(arg or 30), times=times)
        elif kind in ("drop", "drop_after_create"):
            self.add(target, kind, times=times)
        else:
            raise ValueError(f"fault spec {spec!r}: unknown action {action!r}")

    def apply_json(self, body: dict[str, Any]) -> None:
        """Apply a control-API body: ``{"spec": "..."}``, ``{"specs": [...]}``, ``{"faults": [{...}]}``,
        ``{"fail_next": {"count", "code", "message"}}``, ``{"cancel_next": N}``, ``{"task_seconds": [..]}``,
        ``{"suspend_next": {"count", "seconds"}}``, ``{"clear": true}`` (applied first).
        Raises ValueError on bad input."""
        if body.get("clear"):
            self.clear()
        specs = list(body.get("specs", []))
        if "spec" in body:
            specs.append(body["spec"])
        for spec in specs:
            self.add_spec(str(spec))
        for f in body.get("faults", []):
            f = dict(f)
            if str(f.get("times", 1)) == "inf":
                f["times"] = math.inf
            endpoint = f.pop("endpoint")
            kind = f.pop("kind", "http")
            self.add(endpoint, kind, **f)
        if "fail_next" in body:
            fn = body["fail_next"]
            fn = {"count": fn} if isinstance(fn, int) else dict(fn)
            self.fail_next(int(fn.get("count", 1)), fn.get("code"), fn.get("message"))
        if "cancel_next" in body:
            self.cancel_next(int(body["cancel_next"]))
        if "task_seconds" in body:
            with self._lock:
                self.task_seconds_queue.extend(float(s) for s in body["task_seconds"])
        if "suspend_next" in body:
            sn = body["suspend_next"]
            sn = {"count": sn} if isinstance(sn, int) else dict(sn)
            self.suspend_next(int(sn.get("count", 1)), float(sn.get("seconds", DEFAULT_SUSPEND_SECONDS)))
