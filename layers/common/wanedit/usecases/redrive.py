"""Redriving dead letters: replay what a DLQ holds into the queue it came from, safely.

Why replaying is safe here: every consumer is idempotent by content (a job is one (video version,
sidecar version); a completion message names a job whose state decides what is left to do), so a
message handled twice does nothing the second time. The redrive itself adds:

- at least once, never lost: a message is sent to its source queue before it is deleted from the
  DLQ; a crash in between replays it twice, which the consumers absorb;
- bounded: one run reads each message at most once and stops at `limit` or when the DLQ has no
  message it has not seen, so a message that dies again (it lands back in the DLQ after the source
  queue's maxReceiveCount) can never make a redrive loop;
- checked: `accept` says whether a message is one the source queue's consumer can take at all; a
  message it refuses (poison: not JSON, not an S3 event, no job id) stays in the DLQ and is
  reported, rather than being sent round again for nothing;
- a dry run reads and reports without changing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from wanedit.adapters.messaging import DeadLetter, DeadLetterQueue
from wanedit.messages import CompletionMessage, LongClipMessage, problem_parsing

Check = Callable[[str], str | None]  # message body -> why it cannot be replayed (None: it can)


@dataclass
class RedriveReport:
    dry_run: bool
    replayed: list[str] = field(default_factory=list)  # message ids
    kept: dict[str, str] = field(default_factory=dict)  # message id -> why it stays in the DLQ

    @property
    def seen(self) -> int:
        return len(self.replayed) + len(self.kept)


def redrive(
    dlq: DeadLetterQueue, *, limit: int = 100, dry_run: bool = False, accept: Check | None = None
) -> RedriveReport:
    """Replay up to `limit` messages of `dlq` into its source queue; see the module doc."""
    report = RedriveReport(dry_run=dry_run)
    seen: set[str] = set()
    held: list[DeadLetter] = []  # read but left in the DLQ: made visible again at the end
    try:
        while report.seen < limit:
            letters = [letter for letter in dlq.receive(limit - report.seen) if letter.message_id not in seen]
            if not letters:
                break
            for letter in letters:
                seen.add(letter.message_id)
                problem = accept(letter.body) if accept else None
                if problem is not None:
                    report.kept[letter.message_id] = problem
                    held.append(letter)
                elif dry_run:
                    report.replayed.append(letter.message_id)
                    held.append(letter)
                else:
                    dlq.replay(letter)
                    dlq.delete(letter)
                    report.replayed.append(letter.message_id)
    finally:
        for letter in held:
            dlq.release(letter)
    return report


def ingest_message_problem(body: str) -> str | None:
    """Can the SubmitFunction take this? It needs an S3 "Object Created" event (via EventBridge)."""
    # Powertools' model of the event (its parser models are too heavy for a function's cold start:
    # the handler reads the same event with Powertools' data class).
    from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

    return problem_parsing(S3EventNotificationEventBridgeModel, body)


def completion_message_problem(body: str) -> str | None:
    """Can the CompleteFunction take this?"""
    return problem_parsing(CompletionMessage, body)


def long_clip_message_problem(body: str) -> str | None:
    """Can the LongClipFunction take this?"""
    return problem_parsing(LongClipMessage, body)
