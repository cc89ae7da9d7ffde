"""The IAM recorder (tests/iam) during chaos runs: its denials, per schedule, and one known one kept apart.

Every AWS call a handler makes in a chaos run is recorded by the suite's IAM recorder and judged
against the function's role after the test, as everywhere in the suite. A batch runs many schedules
in one test, so the world judges after each schedule instead (`denials`): a denial is then one
schedule's violation, with its seed, like any broken invariant.

One denial is a known pipeline bug, pinned (`test_chaos.REGRESSIONS`) rather than failing every
batch: the preview (wanedit/usecases/preview.py) reads the edited MP4 by version (`head` of the
edit's key gives its VersionId, `range_reader` GETs that version), which needs s3:GetObjectVersion
on edited/*; the LongClipFunction's role (template.yaml, its WriteResults statement) grants
s3:GetObject there only. On a versioned bucket every preview is refused (AccessDenied), retried
three times and given up (PreviewsFailed); the edit itself is not affected. Those calls are judged
by a recorder of their own, never the suite's (so its session is not failed by a pinned bug), and
counted; once the role grants the action they are allowed, and the pinned case passes (a strict
xfail: it then fails until it is unpinned, and this filter removed).
"""

from __future__ import annotations

from typing import Any

PREVIEW_READ_BUG = (
    "the preview reads edited/<stem>.mp4 by VersionId (s3:GetObjectVersion), which the "
    "LongClipFunction's role does not grant on edited/* (template.yaml WriteResults: s3:GetObject only): "
    "every preview is AccessDenied on a versioned bucket"
)


def _recorder() -> Any:
    from tests.iam import recorder

    return recorder._recorder


def _is_preview_read(entry: tuple[str, Any, Any], edited_prefix: str) -> bool:
    function, call, _ = entry
    params = call.params
    return (
        function == "LongClipFunction"
        and call.service == "s3"
        and call.operation == "GetObject"
        and "VersionId" in params
        and str(params.get("Key", "")).startswith(edited_prefix)
        and str(params.get("Key", "")).endswith(".mp4")
    )


def denials(edited_prefix: str) -> tuple[list[str], list[str]]:
    """Judge the calls made since the last look: (denials, denials of the known preview read).

    Both empty when the recorder is off (no deploy venv, or the xdist controller)."""
    suite = _recorder()
    if suite is None:
        return [], []
    known = [entry for entry in suite.pending if _is_preview_read(entry, edited_prefix)]
    suite.pending = [entry for entry in suite.pending if not _is_preview_read(entry, edited_prefix)]
    problems = suite.judge()
    if not known:
        return problems, []
    global _probe
    if _probe is None:
        from tests.iam.recorder import Recorder

        _probe = Recorder(f"{suite.worker}-chaos-probe")  # never saved: its verdicts stay here
    _probe.pending = known
    return problems, _probe.judge()


_probe: Any = None
