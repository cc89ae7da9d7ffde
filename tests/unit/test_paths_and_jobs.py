"""Key arithmetic and job identity: pure functions, no I/O."""

import pytest

from wanedit.domain.job import job_id_for
from wanedit.domain.lifecycle import TERMINAL as TERMINAL_STATES
from wanedit.domain.lifecycle import JobState
from wanedit.paths import Layout

layout = Layout()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/team/clip.mp4", ("video", "team/clip")),
        ("incoming/team/clip.MOV", ("video", "team/clip")),
        ("incoming/clip.json", ("sidecar", "clip")),
        ("incoming/a b/ü+%/clip.mp4", ("video", "a b/ü+%/clip")),
        ("incoming/team/_defaults.json", None),
        ("incoming/team/jacket.png", None),
        ("incoming/.mp4", None),
        ("edited/team/clip.mp4", None),
        ("failed/team/clip.json", None),
    ],
)
def test_classify(key, expected):
    assert layout.classify(key) == expected


def test_outputs_keep_the_path_under_their_prefixes():
    assert layout.edited_video_key("a/b c/clip") == "edited/a/b c/clip.mp4"
    assert layout.edited_manifest_key("a/b c/clip") == "edited/a/b c/clip.json"
    assert layout.failed_report_key("a/b c/clip") == "failed/a/b c/clip.json"
    assert layout.sidecar_key("x/clip") == "incoming/x/clip.json"
    assert "incoming/x/clip.mov" in layout.video_candidates("x/clip")


def test_custom_prefixes():
    custom = Layout(incoming="in/", edited="out/", failed="bad/")
    assert custom.classify("in/clip.mp4") == ("video", "clip")
    assert custom.classify("incoming/clip.mp4") is None
    assert custom.edited_video_key("clip") == "out/clip.mp4"


def test_job_identity_is_the_pair_of_versions():
    a = job_id_for("b", "incoming/c.mp4", "v1", "incoming/c.json", "s1")
    assert a == job_id_for("b", "incoming/c.mp4", "v1", "incoming/c.json", "s1")
    assert a != job_id_for("b", "incoming/c.mp4", "v1", "incoming/c.json", "s2")
    assert a != job_id_for("b", "incoming/c.mp4", "v2", "incoming/c.json", "s1")
    assert a.startswith("j-") and len(a) == 26


def test_terminal_and_slot_holding_states():
    assert {s for s in JobState if s.is_terminal} == TERMINAL_STATES
    assert not JobState.SUCCEEDED.is_terminal  # persisting still to do
    assert {s for s in JobState if s.holds_slot} == {
        JobState.SUBMITTING,
        JobState.RECONCILING,
        JobState.SUBMITTED,
    }
