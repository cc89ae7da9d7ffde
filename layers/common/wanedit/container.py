"""The collaborators of the use cases, built once per execution environment.

Handlers call `services()`; tests build `Services` themselves with moto-backed adapters and an
emulator-backed client, so nothing needs patching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from wanedit.adapters.download import ResultDownloader
from wanedit.adapters.jobstore import JobStore
from wanedit.adapters.messaging import CompletionQueue, LongClipQueue, Notifier
from wanedit.adapters.s3 import ObjectStore
from wanedit.adapters.secrets import ApiKeyFromSecret
from wanedit.clock import Clock, SystemClock
from wanedit.dashscope import DashScopeClient, endpoint_for
from wanedit.paths import Layout
from wanedit.settings import Settings, get_settings


@dataclass
class Services:
    settings: Settings
    store: JobStore
    objects: ObjectStore
    api: DashScopeClient
    notifier: Notifier
    completion: CompletionQueue
    downloader: ResultDownloader
    long_clips: LongClipQueue
    clock: Clock = field(default_factory=SystemClock)

    @property
    def layout(self) -> Layout:
        s = self.settings
        return Layout(
            incoming=s.incoming_prefix, edited=s.edited_prefix, failed=s.failed_prefix, work=s.work_prefix
        )


def build_services(settings: Settings, *, api_key: Any = None, clock: Clock | None = None) -> Services:
    """Wire real adapters from settings; `api_key` may be a string or a callable (lazy secret)."""
    if api_key is None:
        api_key = ApiKeyFromSecret(settings.api_key_secret_id)
    base_url = endpoint_for(
        settings.dashscope_region,
        workspace_id=settings.dashscope_workspace_id or None,
        base_url=settings.dashscope_base_url or None,
    )
    return Services(
        settings=settings,
        store=JobStore(settings.job_table_name, retention_days=settings.job_retention_days),
        objects=ObjectStore(settings.bucket_name),
        api=DashScopeClient(api_key, base_url),
        notifier=Notifier(event_bus=settings.event_bus_name, topic_arn=settings.topic_arn),
        completion=CompletionQueue(settings.complete_queue_url),
        downloader=ResultDownloader(),
        long_clips=LongClipQueue(settings.long_clip_queue_url),
        clock=clock or SystemClock(),
    )


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
