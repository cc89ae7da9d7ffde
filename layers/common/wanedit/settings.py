"""Settings: the only module that reads the environment.

Every name here is declared in template.yaml's Globals (the infra test checks it), so a
function can never depend on a variable that the stack does not set.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from wanedit.domain.budget import Prices
from wanedit.domain.usage import Usage


class Settings(BaseSettings):
    """What a function needs to know about its stack; read once per execution environment."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    bucket_name: str = Field(validation_alias="BUCKET_NAME")
    job_table_name: str = Field(validation_alias="JOB_TABLE_NAME")
    complete_queue_url: str = Field(validation_alias="COMPLETE_QUEUE_URL")
    api_key_secret_id: str = Field(validation_alias="API_KEY_SECRET_ID")
    topic_arn: str = Field(default="", validation_alias="TOPIC_ARN")
    event_bus_name: str = Field(default="default", validation_alias="EVENT_BUS_NAME")

    incoming_prefix: str = Field(default="incoming/", validation_alias="INCOMING_PREFIX")
    edited_prefix: str = Field(default="edited/", validation_alias="EDITED_PREFIX")
    failed_prefix: str = Field(default="failed/", validation_alias="FAILED_PREFIX")
    work_prefix: str = Field(default="work/", validation_alias="WORK_PREFIX")
    long_clip_queue_url: str = Field(default="", validation_alias="LONG_CLIP_QUEUE_URL")

    dashscope_region: Literal["singapore", "intl", "beijing"] = Field(
        default="singapore", validation_alias="DASHSCOPE_REGION"
    )
    dashscope_workspace_id: str = Field(default="", validation_alias="DASHSCOPE_WORKSPACE_ID")
    dashscope_base_url: str = Field(default="", validation_alias="DASHSCOPE_BASE_URL")

    max_concurrent_tasks: int = Field(default=5, ge=1, le=50, validation_alias="MAX_CONCURRENT_TASKS")
    job_retention_days: int = Field(default=30, ge=1, validation_alias="JOB_RETENTION_DAYS")
    # Long enough for the service to fetch a queued input (it may sit PENDING behind other tasks),
    # short enough that a leaked URL is soon worthless.
    presign_ttl_seconds: int = Field(default=3600, ge=60, le=43200, validation_alias="PRESIGN_TTL_SECONDS")
    # The deployer's price per billed second by resolution tier (0: no estimate in manifests).
    price_per_second_720p: float = Field(default=0.0, ge=0, validation_alias="PRICE_PER_SECOND_720P")
    price_per_second_1080p: float = Field(default=0.0, ge=0, validation_alias="PRICE_PER_SECOND_1080P")
    price_currency: str = Field(default="USD", validation_alias="PRICE_CURRENCY")
    # The spend guard (0: off), in the price currency, or in billed seconds when no price is set.
    daily_budget: float = Field(default=0.0, ge=0, validation_alias="DAILY_BUDGET")
    monthly_budget: float = Field(default=0.0, ge=0, validation_alias="MONTHLY_BUDGET")

    @property
    def prices(self) -> Prices:
        return Prices(self.price_per_second_720p, self.price_per_second_1080p, self.price_currency)

    def estimated_cost(self, usage: Usage | None) -> dict[str, Any] | None:
        """What a task cost by its usage (billed seconds x the tier's price), or None without a price."""
        if usage is None or usage.duration is None:
            return None
        tier = usage.tier
        price = self.prices.per_second(tier)
        if not price:
            return None
        return {
            "amount": self.prices.amount(usage.duration, tier),
            "currency": self.price_currency,
            "billed_seconds": float(usage.duration),
            "price_per_second": price,
            "tier": tier,
        }


class TracingSettings(BaseSettings):
    """Whether the X-Ray SDK traces each call (Powertools' variable, set from `DetailedTracing`)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    trace_disabled: bool = Field(default=False, validation_alias="POWERTOOLS_TRACE_DISABLED")
    lambda_task_root: str = Field(default="", validation_alias="LAMBDA_TASK_ROOT")

    @property
    def detailed(self) -> bool:
        """On only in Lambda (Powertools' own rule: there is no X-Ray daemon elsewhere)."""
        return not self.trace_disabled and bool(self.lambda_task_root)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this execution environment (cached: env does not change while warm)."""
    return Settings()  # values come from the environment
