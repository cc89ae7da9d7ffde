"""The IAM recorder (tests/iam) during chaos runs: its denials, per schedule, and one known one kept apart.

Every AWS call a handler makes in a chaos run is recorded by the suite's IAM recorder and judged
against the function's role after the test, as everywhere in the suite. A batch runs many schedules
in one test, so the world judges after each schedule instead (`denials`): a denial is then one
schedule's violation, with its seed, like any broken invariant.

Two denials are known pipeline bugs of the LongClipFunction's role (template.yaml), pinned
(`test_chaos.REGRESSIONS`) rather than failing every batch:

- `preview_read`: the preview (wanedit/usecases/preview.py) reads the edited MP4 by version (`head`
  of the edit's key gives its VersionId, `range_reader` GETs that version), which needs
  s3:GetObjectVersion on edited/*; the role's WriteResults statement grants s3:GetObject there only.
  On a versioned bucket every preview is refused, retried three times and given up (PreviewsFailed).
- `stitch_preview_send`: a stitched long clip's announcement (wanedit/usecases/longclip/stitch.py)
  sends its "preview" message to the LongClipQueue, the function's own queue, which the role may
  not send to (no sqs:SendMessage on it). Deployed, the announcement raises before the clip's
  PERSISTED move: every stitch would fail and be retried until the clip ends FAILED.

Those calls are judged by a recorder of their own, never the suite's (whose session a pinned bug
would fail), and counted; once the role allows them they pass, and the pinned case with them (a
strict xfail: it then fails until it is unpinned, and its filter here removed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PREVIEW_READ_BUG = (
    "the preview reads edited/<stem>.mp4 by VersionId (s3:GetObjectVersion), which the "
    "LongClipFunction's role does not grant on edited/* (template.yaml WriteResults: s3:GetObject only): "
    "every preview is AccessDenied on a versioned bucket"
)
STITCH_PREVIEW_SEND_BUG = (
    "a stitched long clip's announcement sends its preview message to the LongClipQueue, which the "
    "LongClipFunction's role may not send to (template.yaml: no sqs:SendMessage on LongClipQueue): "
    "deployed, every stitch fails before the clip is PERSISTED"
)

Entry = tuple[str, Any, Any]  # the recorder's pending call: (function, Call, environment)


def _preview_read(entry: Entry, edited_prefix: str) -> bool:
    function, call, _ = entry
    key = str(call.params.get("Key", ""))
    return (
        function == "LongClipFunction"
        and (call.service, call.operation) == ("s3", "GetObject")
        and "VersionId" in call.params
        and key.startswith(edited_prefix)
        and key.endswith(".mp4")
    )


def _stitch_preview_send(entry: Entry, edited_prefix: str) -> bool:
    function, call, _ = entry
    return (
        function == "LongClipFunction"
        and (call.service, call.operation) == ("sqs", "SendMessage")
        and str(call.params.get("QueueUrl", "")).endswith("LongClipQueue")
    )


KNOWN: dict[str, Callable[[Entry, str], bool]] = {
    "preview_read": _preview_read,
    "stitch_preview_send": _stitch_preview_send,
}


def _recorder() -> Any:
    from tests.iam import recorder

    return recorder._recorder


def set_aside_known(edited_prefix: str) -> dict[str, list[str]]:
    """Take the known bugs' calls out of the suite's recorder (judged by the probe): what the fault
    suite's harness does when a case ends, so that a pinned bug fails its strict xfail only."""
    global _probe
    suite = _recorder()
    known: dict[str, list[str]] = {}
    if suite is None:
        return known
    for name, matches in KNOWN.items():
        calls = [entry for entry in suite.pending if matches(entry, edited_prefix)]
        if not calls:
            continue
        suite.pending = [entry for entry in suite.pending if not matches(entry, edited_prefix)]
        if _probe is None:
            from tests.iam.recorder import Recorder

            _probe = Recorder(f"{suite.worker}-chaos-probe")  # never saved: its verdicts stay here
        _probe.pending = calls
        known[name] = _probe.judge()
    return known


def denials(edited_prefix: str) -> tuple[list[str], dict[str, list[str]]]:
    """Judge the calls made since the last look: the denials, and those of each known bug.

    Empty when the recorder is off (no deploy venv, or the xdist controller)."""
    suite = _recorder()
    if suite is None:
        return [], {}
    known = set_aside_known(edited_prefix)
    return suite.judge(), known


_probe: Any = None
