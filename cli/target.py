"""Which stack the CLI talks to: the local one (`.wanedit/local.json`, or --endpoint) or a deployed one
(--stack NAME, resolved from its CloudFormation outputs), with standard AWS profile/region handling."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from wanedit.clock import SystemClock
from wanedit.container import Services, build_services
from wanedit.dashscope import endpoint_for
from wanedit.settings import Settings

LOCAL_STATE = Path(__file__).resolve().parents[1] / ".wanedit" / "local.json"  # as `wanedit local up` writes


class TargetError(Exception):
    """The CLI cannot tell which stack to use, or cannot reach it."""


@dataclass(frozen=True)
class Target:
    """Names and endpoints of one stack, and a boto3 session to reach it."""

    session: Any
    endpoint_url: str | None
    settings: Settings
    ingest_queue_url: str
    ingest_dlq_url: str
    complete_dlq_url: str
    api_base_url: str
    description: str
    # Empty for a stack (or a local state file) from before long clips: nothing to redrive there.
    longclip_dlq_url: str = ""
    # For `wanedit doctor`: the stack's name, parameter values (as deployed; for the local stack,
    # what its state file records over the template's defaults) and outputs.
    stack_name: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url)

    def services(self) -> Services:
        return build_services(self.settings, clock=SystemClock(), aws=self, api_base_url=self.api_base_url)


def resolve(
    *,
    stack: str | None,
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    local_state: Path = LOCAL_STATE,
) -> Target:
    """--stack wins; else the local stack's state file (with --endpoint overriding its address)."""
    if stack:
        return _deployed(stack, region=region, profile=profile)
    return _local(endpoint, local_state)


def _local(endpoint: str | None, local_state: Path) -> Target:
    if not local_state.exists():
        raise TargetError(
            "no stack: start one with `wanedit local up` (another terminal) or pass --stack NAME"
        )
    state = json.loads(local_state.read_text())
    endpoint_url = endpoint or state["endpoint_url"]
    session = boto3.Session(
        aws_access_key_id=state.get("aws_access_key_id", "local"),
        aws_secret_access_key=state.get("aws_secret_access_key", "local"),
        region_name=state["region"],
    )
    settings = Settings.model_validate(
        {
            **state.get("environment", {}),
            "BUCKET_NAME": state["bucket"],
            "JOB_TABLE_NAME": state["table"],
            "COMPLETE_QUEUE_URL": state["complete_queue_url"],
            "LONG_CLIP_QUEUE_URL": state.get("longclip_queue_url", ""),
            "API_KEY_SECRET_ID": state["secret_id"],
            "TOPIC_ARN": state.get("topic_arn", ""),
            "EVENT_BUS_NAME": state.get("event_bus", "default"),
        }
    )
    return Target(
        session=session,
        endpoint_url=endpoint_url,
        settings=settings,
        ingest_queue_url=state["ingest_queue_url"],
        ingest_dlq_url=state["ingest_dlq_url"],
        complete_dlq_url=state["complete_dlq_url"],
        longclip_dlq_url=state.get("longclip_dlq_url", ""),
        api_base_url=state["emulator_url"],
        description=f"local stack at {endpoint_url}",
        stack_name=state.get("stack_name", "wanedit-local"),
        parameters=state.get("parameters", {}),
    )


# Stack parameters the CLI's settings need beside the outputs (the functions get them as these env vars).
_SETTINGS_PARAMETERS = {
    "PricePerSecond720P": "PRICE_PER_SECOND_720P",
    "PricePerSecond1080P": "PRICE_PER_SECOND_1080P",
    "PriceCurrency": "PRICE_CURRENCY",
    "DailyBudget": "DAILY_BUDGET",
    "MonthlyBudget": "MONTHLY_BUDGET",
    "MaxConcurrentTasks": "MAX_CONCURRENT_TASKS",
}


def _deployed(name: str, *, region: str | None, profile: str | None) -> Target:
    session = boto3.Session(profile_name=profile, region_name=region)
    try:
        described = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    except Exception as error:  # noqa: BLE001 - any failure here means "cannot use that stack"
        raise TargetError(f"cannot read stack {name!r}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    settings = Settings.model_validate(
        {
            "BUCKET_NAME": outputs["BucketName"],
            "JOB_TABLE_NAME": outputs["JobTableName"],
            "COMPLETE_QUEUE_URL": outputs["CompleteQueueUrl"],
            "LONG_CLIP_QUEUE_URL": outputs.get("LongClipQueueUrl", ""),
            "API_KEY_SECRET_ID": outputs["ApiKeySecretArn"],
            "TOPIC_ARN": outputs.get("TopicArn", ""),
            "EVENT_BUS_NAME": outputs.get("EventBusName", "default"),
            "INCOMING_PREFIX": parameters.get("IncomingPrefix", "incoming/"),
            "EDITED_PREFIX": parameters.get("EditedPrefix", "edited/"),
            "FAILED_PREFIX": parameters.get("FailedPrefix", "failed/"),
            "WORK_PREFIX": parameters.get("WorkPrefix", "work/"),
            **{env: parameters[name] for name, env in _SETTINGS_PARAMETERS.items() if parameters.get(name)},
        }
    )
    api_base_url = endpoint_for(
        parameters.get("DashscopeRegion", "singapore"),
        workspace_id=parameters.get("DashscopeWorkspaceId") or None,
        base_url=parameters.get("DashscopeBaseUrl") or None,
    )
    return Target(
        session=session,
        endpoint_url=None,
        settings=settings,
        ingest_queue_url=outputs["IngestQueueUrl"],
        ingest_dlq_url=outputs["IngestDLQUrl"],
        complete_dlq_url=outputs["CompleteDLQUrl"],
        longclip_dlq_url=outputs.get("LongClipDLQUrl", ""),
        api_base_url=api_base_url,
        description=f"stack {name} ({session.region_name})",
        stack_name=name,
        parameters=parameters,
        outputs=outputs,
    )
