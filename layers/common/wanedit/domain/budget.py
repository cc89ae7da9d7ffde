"""The spend guard's arithmetic: what a job will cost before it runs, and the periods it counts in.

The API bills ``usage.duration`` = input + output seconds at the output tier's price. Before a task
exists that is known from validation: the input is the clip's own length, the output the same cut
to ``duration`` when set (a long clip is all its segments: the whole clip, in and out). Budgets
count in the deployer's price currency when a price is set, else in billed seconds. A job counts in
the UTC day and month it was admitted in, from its estimate until the task's own usage replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from wanedit.domain.limits import DEFAULT_RESOLUTION, Resolution
from wanedit.domain.usage import Usage

PeriodKind = Literal["day", "month"]
KEEP_DAYS = 40
KEEP_MONTHS_DAYS = 400


@dataclass(frozen=True)
class Prices:
    """The deployer's price per billed second by tier (0: not set), and its currency."""

    per_second_720p: float = 0.0
    per_second_1080p: float = 0.0
    currency: str = "USD"

    @property
    def unit(self) -> str:
        """What budgets count in: the currency when any price is set, else billed seconds."""
        return self.currency if self.per_second_720p or self.per_second_1080p else "seconds"

    def per_second(self, tier: Resolution) -> float | None:
        """The tier's price per billed second (None when budgets count seconds)."""
        if self.unit == "seconds":
            return None
        return self.per_second_720p if tier == "720P" else self.per_second_1080p

    def amount(self, seconds: float, tier: Resolution) -> float:
        """`seconds` of the tier in the budget's unit (a tier priced 0 costs the budget nothing)."""
        price = self.per_second(tier)
        return round(seconds if price is None else seconds * price, 6)


class Estimate(BaseModel):
    """What a job is expected to cost, as committed against the budgets when it was admitted."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    seconds: float  # billed seconds: input + output
    amount: float  # in `unit`
    unit: str
    tier: Resolution

    def actual(self, usage: Usage | None, prices: Prices) -> float:
        """What the job really cost in the estimate's unit (nothing when no task was billed)."""
        if usage is None or usage.duration is None:
            return 0.0
        return prices.amount(usage.duration, usage.tier)


def estimate(
    clip_seconds: float, *, duration: int | None, resolution: Resolution | None, prices: Prices
) -> Estimate:
    """The estimate of an edit of a clip `clip_seconds` long (`duration` 0 or None keeps its length)."""
    output = min(clip_seconds, float(duration)) if duration else clip_seconds
    seconds = round(clip_seconds + output, 6)
    tier = resolution or DEFAULT_RESOLUTION
    return Estimate(seconds=seconds, amount=prices.amount(seconds, tier), unit=prices.unit, tier=tier)


@dataclass(frozen=True)
class Period:
    """One UTC calendar day or month, as budgets count them."""

    kind: PeriodKind
    label: str  # "2026-12-01" or "2026-12"

    @classmethod
    def of(cls, kind: PeriodKind, epoch: float) -> Period:
        moment = datetime.fromtimestamp(epoch, UTC)
        return cls(kind, moment.strftime("%Y-%m-%d" if kind == "day" else "%Y-%m"))

    @property
    def expires_at(self) -> int:
        """When the ledger may forget the period (DynamoDB TTL): long after anyone asks about it."""
        start = datetime.strptime(self.label, "%Y-%m-%d" if self.kind == "day" else "%Y-%m").replace(
            tzinfo=UTC
        )
        return int(start.timestamp()) + (KEEP_DAYS if self.kind == "day" else KEEP_MONTHS_DAYS) * 86400


def periods_at(epoch: float) -> tuple[Period, Period]:
    return Period.of("day", epoch), Period.of("month", epoch)
