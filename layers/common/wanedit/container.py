"""The collaborators of the use cases, built once per execution environment.

Handlers call `services()`; tests build `Services` themselves (moto-backed adapters and the
emulator, or the unit tests' in-memory fakes), so nothing needs patching. Adapters are imported
where they are built, not at import of this module: a use case's import stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from wanedit.clock import Clock, SystemClock
from wanedit.messages import CompletionMessage, LongClipMessage
from wanedit.paths import Layout
from wanedit.ports import (
    BudgetLedger,
    JobStore,
    Metrics,
    Notifier,
    ObjectStore,
    PollerLease,
    Queue,
    ResultDownloader,
    TaskApi,
)
from wanedit.settings import Settings, get_settings


@dataclass
class Services:
    settings: Settings
    store: JobStore
    objects: ObjectStore
    api: TaskApi
    notifier: Notifier
    completion: Queue[CompletionMessage]
    downloader: ResultDownloader
    long_clips: Queue[LongClipMessage]
    ledger: BudgetLedger
    lease: PollerLease
    metrics: Metrics
    clock: Clock = field(default_factory=SystemClock)

    @property
    def layout(self) -> Layout:
        s = self.settings
        return Layout(
            incoming=s.incoming_prefix, edited=s.edited_prefix, failed=s.failed_prefix, work=s.work_prefix
        )


class AwsClients(Protocol):
    """Where adapters get their boto3 clients (a boto3 Session; the CLI's target of a stack)."""

    def client(self, service: str) -> Any: ...

    def resource(self, service: str) -> Any: ...


def build_services(
    settings: Settings,
    *,
    api_key: Any = None,
    clock: Clock | None = None,
    aws: AwsClients | None = None,
    api_base_url: str | None = None,
) -> Services:
    """Wire real adapters from settings; `api_key` may be a string or a callable (lazy secret).

    `aws` gives the clients (default: boto3's own, from the environment); `api_base_url` overrides
    the endpoint the region and workspace settings choose.
    """
    from wanedit.adapters.budget import DynamoBudgetLedger
    from wanedit.adapters.download import HttpResultDownloader
    from wanedit.adapters.jobstore import DynamoJobStore
    from wanedit.adapters.lease import Lease
    from wanedit.adapters.messaging import EventNotifier, SqsQueue
    from wanedit.adapters.metrics import PowertoolsMetrics
    from wanedit.adapters.s3 import S3ObjectStore

    def client(service: str) -> Any:
        return aws.client(service) if aws is not None else None

    sqs = client("sqs")
    dynamodb = aws.resource("dynamodb") if aws is not None else None
    return Services(
        settings=settings,
        store=DynamoJobStore(
            settings.job_table_name, retention_days=settings.job_retention_days, resource=dynamodb
        ),
        objects=S3ObjectStore(settings.bucket_name, client=client("s3")),
        api=_api_client(settings, api_key, api_base_url, client("secretsmanager")),
        notifier=EventNotifier(
            event_bus=settings.event_bus_name,
            topic_arn=settings.topic_arn,
            events_client=client("events"),
            sns_client=client("sns") if settings.topic_arn else None,
        ),
        completion=SqsQueue(settings.complete_queue_url, name="CompleteQueue", client=sqs),
        downloader=HttpResultDownloader(),
        long_clips=SqsQueue(settings.long_clip_queue_url, name="LongClipQueue", client=sqs),
        ledger=DynamoBudgetLedger(settings.job_table_name, resource=dynamodb),
        lease=Lease(settings.job_table_name, resource=dynamodb),
        metrics=PowertoolsMetrics(),
        clock=clock or SystemClock(),
    )


def _api_client(settings: Settings, api_key: Any, base_url: str | None, secrets_client: Any) -> TaskApi:
    from wanedit.adapters.secrets import ApiKeyFromSecret
    from wanedit.dashscope import DashScopeClient, endpoint_for

    if api_key is None:
        api_key = ApiKeyFromSecret(settings.api_key_secret_id, client=secrets_client)
    url = base_url or endpoint_for(
        settings.dashscope_region,
        workspace_id=settings.dashscope_workspace_id or None,
        base_url=settings.dashscope_base_url or None,
    )
    return DashScopeClient(api_key, url)


_installed: Services | None = None


def install(svc: Services | None) -> None:
    """Make every handler in this process use `svc` (the local stack's seam); None goes back to lazy."""
    global _installed
    _installed = svc
    _from_environment.cache_clear()


def services() -> Services:
    """The services of this execution environment (created on first use, then reused while warm)."""
    return _installed or _from_environment()


@lru_cache(maxsize=1)
def _from_environment() -> Services:
    return build_services(get_settings())
