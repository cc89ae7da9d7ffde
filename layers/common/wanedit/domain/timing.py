"""When the pipeline looks at a job again: intervals, worker timeouts and backoff, each defined once.

The function timeouts and the schedule are template.yaml's (tests/infra binds every one of them to
the template), so a claim is never taken over from a worker that may still be running.
"""

from __future__ import annotations

import random

from wanedit.domain.limits import QUERY_INTERVAL_SECONDS

POLL_INTERVAL_SECONDS = QUERY_INTERVAL_SECONDS
POLL_SCHEDULE_SECONDS = 60.0  # the PollSchedule default, rate(1 minute)

SUBMIT_FUNCTION_TIMEOUT_SECONDS = 60.0
POLL_FUNCTION_TIMEOUT_SECONDS = 60.0
COMPLETE_FUNCTION_TIMEOUT_SECONDS = 900.0
LONG_CLIP_FUNCTION_TIMEOUT_SECONDS = 900.0

STALE_SUBMITTING_SECONDS = 2 * max(SUBMIT_FUNCTION_TIMEOUT_SECONDS, POLL_FUNCTION_TIMEOUT_SECONDS)
"""A job SUBMITTING for longer lost its worker between "create" and "record": reconcile it."""
STALE_PERSISTING_SECONDS = COMPLETE_FUNCTION_TIMEOUT_SECONDS
"""A persist claim this old belongs to a CompleteFunction that timed out: it may be taken over."""
STALE_WORK_SECONDS = LONG_CLIP_FUNCTION_TIMEOUT_SECONDS
"""Likewise for a split or stitch claim of the LongClipFunction."""
RESEND_AFTER_SECONDS = max(COMPLETE_FUNCTION_TIMEOUT_SECONDS, LONG_CLIP_FUNCTION_TIMEOUT_SECONDS) + 300.0
"""A completion, split or stitch message not acted on by then was lost, or its worker died: the
poller sends it again (the consumers are idempotent)."""
SEGMENTS_RECHECK_SECONDS = 300.0
"""How often the poller looks at a long clip waiting for its segments (they wake it when they end)."""

QUOTA_PAUSE_SECONDS = 15 * 60.0
"""No create for this long after the service says the account's quota is used up
(Throttling.AllocationQuota): a person raises a quota, so the next try is one create 15 min later."""

THROTTLE_BACKOFF_BASE = 2.0
THROTTLE_BACKOFF_CAP = 60.0


def backoff(attempt: int, *, base: float = THROTTLE_BACKOFF_BASE, cap: float = THROTTLE_BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter: spreads a burst of throttled jobs over time."""
    return random.uniform(0, min(cap, base * 2 ** max(attempt, 0)))
