"""The local stack with moto in process (`moto.mock_aws`) instead of moto's HTTP server.

Same resources (created from template.yaml by `local.resources.create_local_resources`), same
DashScope emulator (an HTTP server on loopback, on the simulated clock), same event pump, same
`container.build_services` wiring of the real adapters; the only difference from
`local.stack.LocalStack` is the transport between boto3 and moto. With moto's server every AWS
call is an HTTP round trip through werkzeug in a thread of this process (~15-40 ms on a busy
2-core box, mostly waiting for the GIL and the socket); in process, botocore's `before-send` hook
hands the signed request straight to moto's backend (~1-3 ms). Requests are still serialized and
signed by botocore and parsed from moto's wire-format responses, so the handlers and their
adapters see exactly what they see over HTTP (errors, conditional failures, pagination).

How: no `AWS_ENDPOINT_URL`, so every client speaks to the services' AWS hostnames, which moto's
stub answers; the emulator stays on 127.0.0.1 (moto lets non-AWS `requests` traffic pass through).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import boto3
import botocore
from moto import mock_aws  # before any boto3 session: moto registers its stub with botocore on import

from bench.fastmoto import accelerated
from local.emulator import Emulator
from local.pump import Pump
from local.resources import LocalResources, create_local_resources
from local.stack import LOCAL_API_KEY, SimulatedClock
from wanedit import container
from wanedit.clock import Clock
from wanedit.settings import Settings

# Services whose requests moto need not see signed (it ignores signatures; region and account come
# from the URL and the default account). S3 stays signed: presigned URLs must be the real thing.
UNSIGNED_SERVICES = ("dynamodb", "sqs", "sns", "events", "secretsmanager")


def _unsigned(**_: Any) -> Any:
    return botocore.UNSIGNED


class InProcessStack:
    """`LocalStack`'s interface (emulator, resources, pump, client) over `moto.mock_aws`."""

    def __init__(
        self,
        *,
        emulator_clock: Any,
        task_seconds: Any = (60.0, 120.0),
        max_concurrent_tasks: int = 5,
        api_key: str = LOCAL_API_KEY,
        region: str = "us-east-1",
        emulator_options: dict[str, Any] | None = None,
        fast_moto: bool = True,
        verify_fast_moto: bool = False,
    ) -> None:
        self._emulator_clock = emulator_clock
        self.clock: Clock = SimulatedClock(emulator_clock)
        self._task_seconds = task_seconds
        self._max_concurrent, self._api_key, self._region = max_concurrent_tasks, api_key, region
        self._emulator_options = emulator_options or {}
        self._saved_env: dict[str, str | None] = {}
        self._mock: Any = None
        self._fast, self._verify = fast_moto, verify_fast_moto
        self._patches = contextlib.ExitStack()
        self.emulator: Emulator
        self.resources: LocalResources
        self.pump: Pump

    def start(self) -> InProcessStack:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Clients must resolve to the AWS hostnames moto's stub answers: no endpoint override.
        self._apply_env({"AWS_ENDPOINT_URL": None})
        # Keep boto3's default session: the benchmark's request counters are registered on it.
        self._mock = mock_aws(config={"core": {"reset_boto3_session": False}})
        self._mock.start()  # resets moto's state: every run starts from nothing
        if self._fast:
            self._patches.enter_context(accelerated(verify=self._verify))
            events = boto3._get_default_session().events
            for service in UNSIGNED_SERVICES:
                events.register(f"choose-signer.{service}", _unsigned, unique_id=f"bench-unsigned-{service}")
                self._patches.callback(
                    events.unregister, f"choose-signer.{service}", unique_id=f"bench-unsigned-{service}"
                )
        self.emulator = Emulator(
            api_key=self._api_key,
            clock=self._emulator_clock,
            task_seconds=self._task_seconds,
            host="127.0.0.1",
            port=0,
            **self._emulator_options,
        )
        self.emulator.start()
        # endpoint None: botocore's default endpoints (the function takes it as given to boto3).
        self.resources = create_local_resources(None, region=self._region, api_key=self._api_key)  # type: ignore[arg-type]
        env: dict[str, str | None] = dict(
            self.resources.function_environment(
                api_base_url=self.emulator.base_url, max_concurrent_tasks=self._max_concurrent
            )
        )
        env.update(
            {
                "AWS_ENDPOINT_URL": None,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        self._apply_env(env)
        container.install(container.build_services(Settings(), clock=self.clock))
        self.pump = Pump(self.resources, self.clock)
        return self

    def stop(self) -> None:
        container.install(None)
        if getattr(self, "emulator", None) is not None:
            self.emulator.stop()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._patches.close()
        self._restore_env()

    def __enter__(self) -> InProcessStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.resources.region)

    def _apply_env(self, env: dict[str, str | None]) -> None:
        for name, value in env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
