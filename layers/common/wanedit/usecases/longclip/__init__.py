"""Long clips: a clip over the API's 10 s, split into 2-10 s segments, one task each, stitched back.

Opt-in per sidecar or folder (``"long_clip": "split"``). The parent job never holds a task slot;
each segment is an ordinary job (``parent_id`` set) queueing for a slot with every other job, so
long clips share the account's cap with everything else.

  intake    the parent is SPLITTING; a "split" message goes to the LongClipFunction (`segments.begin`)
  split     the clip into work/<job>/segments/NNN.mp4; the parent SEGMENTED with its segments
            listed, then one QUEUED job per segment, submitted as slots allow        (`split`)
  complete  each edited segment into work/<job>/edited/NNN.mp4; the last one asks for "stitch"
  stitch    the edited segments and the clip's audio into edited/<stem>.mp4 with one manifest
            listing every segment, its task and usage; PERSISTED                      (`stitch`)
  poller    the backstop of every step (`segments.check_segments`, `segments.resend`): a lost
            message is sent again, a missing segment job is made again, a segment that failed for
            good ends the parent.

Crash safety: keys and segment job ids follow from the parent and the segment's place, so any step
can run again. Split and stitch workers claim the parent (``work_started_at``, `work.claim_work`);
a claim older than the function's timeout may be taken over.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.lifecycle import JobState
from wanedit.messages import LongClipMessage
from wanedit.usecases.longclip.split import split_long_clip
from wanedit.usecases.longclip.stitch import stitch_long_clip
from wanedit.usecases.longclip.work import LongClipRetry
from wanedit.usecases.preview import PreviewRetry, make_preview_of

__all__ = ["LongClipRetry", "PreviewRetry", "run_action"]

logger = Logger(child=True)


def run_action(svc: Services, message: LongClipMessage, *, attempt: int = 1) -> JobState | None:
    """The LongClipFunction's work for one message; returns the job's state (None: no such job).

    `attempt` is the message's delivery count (a preview is tried a few times only).
    """
    job = svc.store.get(message.job_id)
    if job is None:
        logger.warning("long-clip message for an unknown job", extra={"job_id": message.job_id})
        return None
    if message.action == "split":
        return split_long_clip(svc, job)
    if message.action == "stitch":
        return stitch_long_clip(svc, job)
    make_preview_of(svc, job, attempt=attempt)
    return job.state
