"""The local stack: moto (resources from template.yaml), the DashScope emulator, and the event pump.

Everything listens on 127.0.0.1. The handlers run in this process with the environment a deployed
function would get (built from the template), and the services they use are installed through
`wanedit.container.install`, so a simulated clock can drive them and the emulator together.

One clock, as with the real service: the pipeline and the emulator read the same clock object (the
wall clock, or a test's ManualClock). In real time, `time_scale` makes the emulated service faster
(its PENDING and run times divided by it) without moving the times it reports.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from local.emulator import Emulator
from local.pump import Pump
from local.resources import LocalResources, create_local_resources
from wanedit import container
from wanedit.clock import Clock, SystemClock
from wanedit.settings import Settings

STOP_GRACE_SECONDS = 60.0  # the most `stop()` waits for the background pump: one schedule period

REPO = Path(__file__).resolve().parents[1]
LOCAL_API_KEY = "sk-local-emulator-key-not-a-secret"  # the emulator's key; no real key is ever used
STATE_FILE = REPO / ".wanedit" / "local.json"  # read by the CLI (cli.target.LOCAL_STATE)


class SimulatedClock:
    """A wanedit Clock over the emulator's manual clock: sleeping advances both worlds at once."""

    def __init__(self, manual: Any) -> None:
        self.manual = manual

    def now(self) -> float:
        return float(self.manual.now())

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.manual.advance(seconds)


class LocalStack:
    """Start with `start()` (or as a context manager); `pump` drives the functions.

    `api_key`: the keys of the pipeline's account (the first is the one the pipeline uses; more are
    other keys of the same account, sharing its tasks and limits). `accounts`: other accounts.
    `time_scale` applies in real time only: a simulated clock is advanced instead. `parameters`
    override template.yaml's parameter defaults, as `sam deploy --parameter-overrides` does.
    """

    def __init__(
        self,
        *,
        emulator_clock: Any = None,
        time_scale: float = 30.0,
        task_seconds: Any = (60.0, 120.0),
        max_concurrent_tasks: int = 5,
        api_key: str | Sequence[str] = LOCAL_API_KEY,
        accounts: Mapping[str, Sequence[str]] | None = None,
        region: str = "us-east-1",
        quiet: bool = True,
        emulator_options: dict[str, Any] | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self._emulator_clock = emulator_clock
        self._parameters = dict(parameters or {})
        self.clock: Clock = SimulatedClock(emulator_clock) if emulator_clock is not None else SystemClock()
        self._time_scale = time_scale if emulator_clock is None else 1.0
        self._task_seconds = task_seconds
        self._account_keys = [api_key] if isinstance(api_key, str) else list(api_key)
        if not self._account_keys:
            raise ValueError("the local stack needs an API key")
        self._accounts = dict(accounts or {})
        self._api_key = self._account_keys[0]
        self._max_concurrent, self._region = max_concurrent_tasks, region
        self._quiet = quiet
        self._emulator_options = emulator_options or {}
        self._moto: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self.emulator: Emulator
        self.resources: LocalResources
        self.pump: Pump
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start every stack from nothing.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self.emulator = Emulator(
            api_key=self._account_keys,
            accounts=self._accounts,
            clock=self._emulator_clock if self._emulator_clock is not None else self.clock,
            time_scale=self._time_scale,
            task_seconds=self._task_seconds,
            host="127.0.0.1",
            port=0,
            **self._emulator_options,
        )
        self.emulator.start()
        self.resources = create_local_resources(
            endpoint, region=self._region, api_key=self._api_key, parameters=self._parameters
        )
        env = self.resources.function_environment(
            api_base_url=self.emulator.base_url, max_concurrent_tasks=self._max_concurrent
        )
        env.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"})
        if self._quiet:
            env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        self._apply_env(env)
        container.install(container.build_services(Settings(), clock=self.clock))
        self.pump = Pump(self.resources, self.clock)
        return self

    def stop(self) -> None:
        self._stop.set()
        # A poll invocation in flight ends once nothing is due (or at its deadline): wait for it, so
        # that no handler of this stack still runs against AWS once the stack is gone.
        for thread in self._threads:
            thread.join(timeout=STOP_GRACE_SECONDS)
        self._threads = []
        container.install(None)
        if getattr(self, "emulator", None) is not None:
            self.emulator.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._restore_env()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_background(self, *, poll_every: float = 60.0) -> None:
        """Deliver events and run the schedule in threads until `stop()`."""
        self._threads = self.pump.run(self._stop, poll_every=poll_every)

    def write_state(self, path: Path = STATE_FILE) -> Path:
        """`.wanedit/local.json`: how tools (and people) reach this stack."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.describe(), indent=2) + "\n")
        return path

    def describe(self) -> dict[str, Any]:
        r = self.resources
        return {
            "endpoint_url": r.endpoint_url,
            "region": r.region,
            "bucket": r.bucket,
            "table": r.table,
            "ingest_queue_url": r.ingest_queue_url,
            "ingest_dlq_url": r.ingest_dlq_url,
            "complete_queue_url": r.complete_queue_url,
            "complete_dlq_url": r.complete_dlq_url,
            "longclip_queue_url": r.longclip_queue_url,
            "longclip_dlq_url": r.longclip_dlq_url,
            "topic_arn": r.topic_arn,
            "secret_id": r.secret_id,
            "event_bus": r.event_bus,
            "emulator_url": self.emulator.base_url,
            # what the functions are configured with (prices, budgets...): the CLI reads its settings here
            "environment": dict(r.template_environment),
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }

    # clients for users of the stack (tests, demo) ---------------------------------------------

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.resources.endpoint_url,
            region_name=self.resources.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's dummy credentials
        )

    # environment ------------------------------------------------------------------------------

    def _apply_env(self, env: dict[str, str]) -> None:
        for name, value in env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
