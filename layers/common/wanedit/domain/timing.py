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

RECONCILE_SKEW = 30.0  # our clock vs the service's (both NTP-synced; generous)
CREATE_SEND_WINDOW = 60.0  # a create reaches the service within this of the attempt (timeouts 3+15 s)
LIST_MARGIN_SECONDS = 60.0  # reconcile lists this much around its candidates' creation times
TIME_RESOLUTION_SECONDS = 1.0  # the task list's times and bounds are whole seconds

CREATE_LOCK_SECONDS = (
    CREATE_SEND_WINDOW
    + RECONCILE_SKEW
    + max(RECONCILE_SKEW, LIST_MARGIN_SECONDS)
    + 2 * TIME_RESOLUTION_SECONDS
)
"""How long an attempt's create lock (`usecases.submission`) bars other jobs' creates of its prompt.

Reconciling an attempt made at `since` (our clock) lists the tasks created (the service's clock,
within RECONCILE_SKEW of ours) in [since - LIST_MARGIN, since + CREATE_SEND_WINDOW + LIST_MARGIN]
and keeps those in [since - RECONCILE_SKEW, since + CREATE_SEND_WINDOW]; the attempt's own task is
created by since + CREATE_SEND_WINDOW (ours), so by since + CREATE_SEND_WINDOW + RECONCILE_SKEW on the
service's clock. Two attempts `a` and `b >= a + CREATE_LOCK_SECONDS` therefore never see each
other's task: b's is created after a's list ends (b - RECONCILE_SKEW > a + CREATE_SEND_WINDOW +
LIST_MARGIN), and a's before b's list begins (a + CREATE_SEND_WINDOW + RECONCILE_SKEW < b -
max(RECONCILE_SKEW, LIST_MARGIN)), a whole second of rounding to spare on either side. This holds
for a listed task that shows no creation time too (the list's bounds alone keep it out)."""
CREATE_LOCK_RETRY_SECONDS = 5.0
"""A job that found its prompt's create lock held looks again this soon (or when the lock expires,
if sooner): the holder usually releases it within its create's read timeout."""

THROTTLE_BACKOFF_BASE = 2.0
THROTTLE_BACKOFF_CAP = 60.0


def backoff(attempt: int, *, base: float = THROTTLE_BACKOFF_BASE, cap: float = THROTTLE_BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter: spreads a burst of throttled jobs over time."""
    return random.uniform(0, min(cap, base * 2 ** max(attempt, 0)))
