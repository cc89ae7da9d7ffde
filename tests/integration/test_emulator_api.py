"""The emulator speaks the reference's HTTP API: shapes, errors, validation, lifecycle, list, limits."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from local.emulator import Emulator, ManualClock
from local.emulator.clock import CST
from local.emulator.contract import (
    LIST_ENTRY_FIELDS,
    LIST_TIME_FIELDS,
    LIST_WINDOW_REFUSED,
    SUCCEEDED_OUTPUT_FIELDS,
)
from local.samplemedia import make_image
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import API_KEY, OTHER_ACCOUNT_KEY, SAME_ACCOUNT_KEY, Api, MediaServer, body

clock, emu, media = ef.clock, ef.emu, ef.media  # fixtures

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")


def test_reference_curl_examples_have_reference_shapes(emu: Emulator, media: MediaServer) -> None:
    """Both curl examples of the reference (instruction-only; instruction + reference image), then the query
    through PENDING -> RUNNING -> SUCCEEDED, with exactly the reference's key sets."""
    api = Api(emu)
    png = make_image(None, width=320, height=320, fmt="PNG")
    media.put("ref.png", png)
    r = api.create_raw(
        body(
            media.url("clip.mp4"),
            "Convert the entire scene to a claymation style",
            resolution="720P",
            prompt_extend=True,
            watermark=True,
        )
    )
    assert r.status_code == 200
    j = r.json()
    assert set(j) == {"output", "request_id"} and set(j["output"]) == {"task_status", "task_id"}
    assert j["output"]["task_status"] == "PENDING" and UUID.match(j["output"]["task_id"])
    assert UUID.match(j["request_id"])
    prompt2 = "Replace the girl's clothes in the video with the clothes from the image"
    r2 = api.create_raw(
        body(
            media.url("clip.mp4"),
            prompt2,
            [{"type": "reference_image", "url": media.url("ref.png")}],
            resolution="720P",
            prompt_extend=True,
            watermark=True,
        )
    )
    assert r2.status_code == 200
    tid = r2.json()["output"]["task_id"]

    q = api.query(tid).json()
    assert set(q) == {"request_id", "output"}
    assert (
        set(q["output"]) == {"task_id", "task_status", "submit_time"}
        and q["output"]["task_status"] == "PENDING"
    )
    emu.advance(6)
    q = api.query(tid).json()
    assert q["output"]["task_status"] == "RUNNING"
    assert set(q["output"]) == {"task_id", "task_status", "submit_time", "scheduled_time"}
    q = api.finish(tid, 100)
    out = q["output"]
    assert set(q) == {"request_id", "output", "usage"}
    assert set(out) == SUCCEEDED_OUTPUT_FIELDS
    assert out["task_status"] == "SUCCEEDED" and out["orig_prompt"] == prompt2
    for k in ("submit_time", "scheduled_time", "end_time"):
        assert TS.match(out[k]), out[k]
    assert _ts(out["scheduled_time"]) - _ts(out["submit_time"]) == timedelta(seconds=5)
    assert _ts(out["end_time"]) - _ts(out["scheduled_time"]) == timedelta(seconds=90)
    # UTC+8 wall time of the shared clock
    assert out["submit_time"].startswith(datetime.fromtimestamp(emu.now(), tz=CST).strftime("%Y-%m-%d"))
    u = q["usage"]
    assert set(u) == {"duration", "input_video_duration", "output_video_duration", "video_count", "SR"}
    assert u == {
        "duration": 4.0,
        "input_video_duration": 2.0,
        "output_video_duration": 2.0,
        "video_count": 1,
        "SR": 720,
    }
    assert isinstance(u["SR"], int)
    got = api.s.get(out["video_url"])
    assert got.status_code == 200 and got.headers["Content-Type"] == "video/mp4"
    assert int(got.headers["Content-Length"]) == len(got.content) > 1000


def _err(r: Any, status: int, code: str, message: str | None = None) -> dict:
    assert r.status_code == status, r.text
    j = r.json()
    assert set(j) == {"request_id", "code", "message"}
    assert j["code"] == code
    if message is not None:
        assert j["message"] == message
    return dict(j)


def test_async_header_and_api_key_errors(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    b = body(media.url("clip.mp4"))
    h = api.headers()
    del h["X-DashScope-Async"]
    msg = "current user api does not support synchronous calls"
    _err(api.create_raw(b, headers=h), 403, "AccessDenied", msg)
    _err(api.create_raw(b, headers=api.headers(**{"X-DashScope-Async": "disable"})), 403, "AccessDenied", msg)
    h = api.headers()
    del h["Authorization"]
    _err(api.create_raw(b, headers=h), 401, "InvalidApiKey", "No API-key provided.")
    bad = Api(emu, key="sk-wrong")
    _err(bad.create_raw(b), 401, "InvalidApiKey", "Invalid API-key provided.")
    tid = api.create(media.url("clip.mp4"))
    _err(bad.query(tid), 401, "InvalidApiKey", "Invalid API-key provided.")
    _err(bad.cancel(tid), 401, "InvalidApiKey", "Invalid API-key provided.")
    _err(bad.list(), 401, "InvalidApiKey", "Invalid API-key provided.")
    _err(api.s.get(f"{emu.base_url}/api/v1/tasks/{tid}"), 401, "InvalidApiKey", "No API-key provided.")
    assert emu.counters["tasks_created"] == 1


def _mut(path: str, value: Any) -> Any:
    def f(b: dict) -> dict:
        node = b
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {}) if not k.isdigit() else node[int(k)]
        last = keys[-1]
        if value is _DEL:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
        return b

    return f


_DEL = object()
VID = {"type": "video", "url": "http://127.0.0.1:9/v.mp4"}
IMG = {"type": "reference_image", "url": "http://127.0.0.1:9/i.png"}

INVALID = [
    ("model missing", _mut("model", _DEL), "model"),
    ("model wrong", _mut("model", "wan2.6-t2v"), "model"),
    ("model not str", _mut("model", 5), "model"),
    ("input missing", _mut("input", _DEL), "input"),
    ("input not object", _mut("input", "x"), "input"),
    ("media missing", _mut("input.media", _DEL), "input.media"),
    ("media empty", _mut("input.media", []), "input.media"),
    ("media not list", _mut("input.media", {"type": "video"}), "input.media"),
    ("two videos", _mut("input.media", [VID, VID]), "input.media"),
    ("no video", _mut("input.media", [IMG]), "input.media"),
    ("five images", _mut("input.media", [VID, IMG, IMG, IMG, IMG, IMG]), "input.media"),
    (
        "bad type",
        _mut("input.media", [VID, {"type": "audio", "url": "http://127.0.0.1/a.mp3"}]),
        "input.media[1].type",
    ),
    ("missing url", _mut("input.media", [{"type": "video"}]), "input.media[0].url"),
    ("item not object", _mut("input.media", ["http://x"]), "input.media[0]"),
    (
        "video data uri",
        _mut("input.media", [{"type": "video", "url": "data:video/mp4;base64,AAAA"}]),
        "input.media[0].url",
    ),
    ("video ftp", _mut("input.media", [{"type": "video", "url": "ftp://h/v.mp4"}]), "input.media[0].url"),
    (
        "image data gif",
        _mut("input.media", [VID, {"type": "reference_image", "url": "data:image/gif;base64,R0lG"}]),
        "input.media[1].url",
    ),
    ("prompt not str", _mut("input.prompt", 42), "input.prompt"),
    ("negative not str", _mut("input.negative_prompt", ["x"]), "input.negative_prompt"),
    ("parameters not object", _mut("parameters", [1]), "parameters"),
    ("resolution", _mut("parameters.resolution", "4K"), "parameters.resolution"),
    ("resolution lower", _mut("parameters.resolution", "720p"), "parameters.resolution"),
    ("ratio", _mut("parameters.ratio", "21:9"), "parameters.ratio"),
    ("duration 1", _mut("parameters.duration", 1), "parameters.duration"),
    ("duration 11", _mut("parameters.duration", 11), "parameters.duration"),
    ("duration float", _mut("parameters.duration", 2.5), "parameters.duration"),
    ("duration str", _mut("parameters.duration", "5"), "parameters.duration"),
    ("duration bool", _mut("parameters.duration", True), "parameters.duration"),
    ("audio_setting", _mut("parameters.audio_setting", "mute"), "parameters.audio_setting"),
    ("prompt_extend", _mut("parameters.prompt_extend", "yes"), "parameters.prompt_extend"),
    ("watermark", _mut("parameters.watermark", 1), "parameters.watermark"),
    ("seed negative", _mut("parameters.seed", -1), "parameters.seed"),
    ("seed too big", _mut("parameters.seed", 2147483648), "parameters.seed"),
    ("seed str", _mut("parameters.seed", "7"), "parameters.seed"),
]


@pytest.mark.parametrize(("case", "mutate", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_body_is_400_invalid_parameter_naming_the_field(
    emu: Emulator, case: str, mutate: Any, field: str
) -> None:
    api = Api(emu)
    b = mutate(body("http://127.0.0.1:9/v.mp4"))
    j = _err(api.create_raw(b), 400, "InvalidParameter")
    assert field in j["message"], (case, j["message"])
    assert emu.counters["tasks_created"] == 0 and emu.counters["creates_rejected"] == 1


def test_invalid_json_and_content_type(emu: Emulator) -> None:
    api = Api(emu)
    r = api.s.post(
        emu.base_url + "/api/v1/services/aigc/video-generation/video-synthesis",
        data=b"{nope",
        headers=api.headers(),
    )
    _err(r, 400, "InvalidParameter")
    r = api.s.post(
        emu.base_url + "/api/v1/services/aigc/video-generation/video-synthesis",
        data=b"{}",
        headers=api.headers(**{"Content-Type": "text/plain"}),
    )
    assert "Content-Type" in _err(r, 400, "InvalidParameter")["message"]
    _err(
        api.s.get(emu.base_url + "/api/v1/services/nope", headers=api.headers()),
        400,
        "InvalidParameter",
        "url error, please check url!",
    )


def test_long_prompts_are_truncated_silently_and_orig_prompt_is_as_given(
    emu: Emulator, media: MediaServer
) -> None:
    api = Api(emu)
    long_prompt = "x" * 6000
    b = body(media.url("clip.mp4"), long_prompt, resolution="720P")
    b["input"]["negative_prompt"] = "n" * 700
    r = api.create_raw(b)
    assert r.status_code == 200
    tid = r.json()["output"]["task_id"]
    assert emu.task(tid).prompt_used == "x" * 5000  # type: ignore[union-attr]
    out = api.finish(tid)["output"]
    assert out["task_status"] == "SUCCEEDED" and out["orig_prompt"] == long_prompt


def test_data_uri_reference_image_accepted(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    jpg = make_image(None, width=300, height=400, fmt="JPEG")
    uri = "data:image/jpeg;base64," + base64.b64encode(jpg).decode()
    tid = api.create(
        media.url("clip.mp4"), media_extra=[{"type": "reference_image", "url": uri}], resolution="720P"
    )
    assert api.finish(tid)["output"]["task_status"] == "SUCCEEDED"


def test_unknown_task_other_account_and_24h_expiry(
    emu: Emulator, clock: ManualClock, media: MediaServer
) -> None:
    api = Api(emu)
    q = api.query("00000000-0000-0000-0000-000000000000").json()
    assert q["output"] == {"task_id": "00000000-0000-0000-0000-000000000000", "task_status": "UNKNOWN"}
    assert set(q) == {"request_id", "output"}
    tid = api.create(media.url("clip.mp4"), resolution="720P")
    foreign = Api(emu, key=OTHER_ACCOUNT_KEY).query(tid).json()
    assert set(foreign) == {"request_id", "output"}
    assert foreign["output"] == {"task_id": tid, "task_status": "UNKNOWN"}  # as an unknown id
    assert Api(emu, key=SAME_ACCOUNT_KEY).output(tid)["task_status"] == "PENDING"  # same account
    out = api.finish(tid)["output"]
    url = out["video_url"]
    assert api.s.get(url).status_code == 200
    # range requests on the result
    r = api.s.get(url, headers={"Range": "bytes=0-99"})
    assert (
        r.status_code == 206
        and len(r.content) == 100
        and r.headers["Content-Range"].startswith("bytes 0-99/")
    )
    r = api.s.get(url, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and len(r.content) == 10
    # wrong signature
    bad = re.sub(r"Signature=[^&]+", "Signature=AAAA", url)
    r = api.s.get(bad)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    emu.advance(24 * 3600)
    assert api.query(tid).json()["output"] == {"task_id": tid, "task_status": "UNKNOWN"}
    r = api.s.get(url)
    assert r.status_code == 403 and r.headers["Content-Type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in r.text and "<Message>Request has expired.</Message>" in r.text


def test_cancel_pending_ok_running_refused(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    t1 = api.create(media.url("clip.mp4"), resolution="720P")
    r = api.cancel(t1)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    out = api.output(t1)
    assert out["task_status"] == "CANCELED" and set(out) == {
        "task_id",
        "task_status",
        "submit_time",
        "end_time",
    }
    msg = "Failed to cancel the task, please confirm if the task is in PENDING status."
    _err(api.cancel(t1), 400, "UnsupportedOperation", msg)  # already canceled
    t2 = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(10)
    assert api.output(t2)["task_status"] == "RUNNING"
    _err(api.cancel(t2), 400, "UnsupportedOperation", msg)
    _err(api.cancel("nope"), 400, "UnsupportedOperation", msg)
    t3 = api.create(media.url("clip.mp4"), resolution="720P")
    _err(Api(emu, key=OTHER_ACCOUNT_KEY).cancel(t3), 400, "UnsupportedOperation", msg)  # not its task
    assert api.output(t3)["task_status"] == "PENDING"
    assert Api(emu, key=SAME_ACCOUNT_KEY).cancel(t3).status_code == 200  # another key, same account
    emu.advance(200)
    assert api.output(t2)["task_status"] == "SUCCEEDED"
    assert api.output(t3)["task_status"] == "CANCELED"
    assert emu.counters["cancels"] == 6


def _ms(text: str) -> int:
    """A query time (``YYYY-MM-DD HH:mm:ss.SSS``, UTC+8) as the list's epoch milliseconds."""
    return int(_ts(text).replace(tzinfo=CST).timestamp() * 1000)


def compact(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=CST).strftime("%Y%m%d%H%M%S")


def test_list_entries_are_documented_fields_with_epoch_millisecond_times(
    emu: Emulator, media: MediaServer
) -> None:
    api = Api(emu)
    done = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(200)
    running = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(10)
    pending = Api(emu, key=SAME_ACCOUNT_KEY).create(media.url("clip.mp4"), resolution="720P")
    j = api.list().json()
    assert set(j) == {"request_id", "data", "page_no", "page_size", "total", "total_page"}
    by_id = {d["task_id"]: d for d in j["data"]}
    assert [d["task_id"] for d in j["data"]] == [pending, running, done]  # newest first
    assert set(by_id[done]) == LIST_ENTRY_FIELDS  # every documented field, no other
    assert set(by_id[running]) == LIST_ENTRY_FIELDS - {"end_time"}  # not known yet: left out
    assert set(by_id[pending]) == LIST_ENTRY_FIELDS - {"start_time", "end_time"}
    out = api.output(done)
    entry = by_id[done]
    assert all(type(entry[f]) is int for f in LIST_TIME_FIELDS)  # numbers, never strings
    assert entry["gmt_create"] == _ms(out["submit_time"])
    assert entry["start_time"] == _ms(out["scheduled_time"])
    assert entry["end_time"] == _ms(out["end_time"])
    assert entry["status"] == "SUCCEEDED" and entry["model_name"] == "wan2.7-videoedit"
    assert entry["region"] == "ap-southeast-1"
    assert entry["user_api_unique_key"] == "apikey:v1:aigc:video-generation:video-synthesis:wan2.7-videoedit"
    created = {t["task_id"]: t["request_id"] for t in emu.counters["created_tasks"]}
    assert entry["request_id"] == created[done]  # the create's request_id, for reconciliation
    # One account (its main account's UID on every task); one key id and caller per key.
    assert len({d["caller_parent_id"] for d in j["data"]}) == 1
    assert by_id[done]["api_key_id"] == by_id[running]["api_key_id"] != by_id[pending]["api_key_id"]
    assert by_id[done]["caller_uid"] != by_id[pending]["caller_uid"]
    assert all(
        isinstance(d[f], str) for d in j["data"] for f in ("api_key_id", "caller_parent_id", "caller_uid")
    )
    assert API_KEY not in str(j) and SAME_ACCOUNT_KEY not in str(j)


def test_list_filters_pages_and_accounts(emu: Emulator, clock: ManualClock, media: MediaServer) -> None:
    api = Api(emu)
    t0 = clock.now()
    a = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(3600)
    b = api.create(media.url("clip.mp4"), resolution="720P")
    c = Api(emu, key=SAME_ACCOUNT_KEY).create(media.url("clip.mp4"), resolution="720P")
    api.cancel(c)
    emu.advance(300)  # a, b SUCCEEDED
    Api(emu, key=OTHER_ACCOUNT_KEY).create(media.url("clip.mp4"), resolution="720P")
    j = api.list().json()
    assert j["total"] == 3 and j["page_no"] == 1 and j["page_size"] == 10 and j["total_page"] == 1
    by_id = {d["task_id"]: d for d in j["data"]}
    assert by_id[a]["status"] == "SUCCEEDED" and by_id[c]["status"] == "CANCELED"
    assert Api(emu, key=SAME_ACCOUNT_KEY).list().json()["data"] == j["data"]  # one account, one list
    w = api.list(start_time=compact(t0 + 1800), end_time=compact(t0 + 7200)).json()
    assert {d["task_id"] for d in w["data"]} == {b, c}
    w = api.list(start_time=compact(t0 - 60), end_time=compact(t0 + 60)).json()
    assert [d["task_id"] for d in w["data"]] == [a]
    assert {d["task_id"] for d in api.list(status="CANCELED").json()["data"]} == {c}
    assert api.list(model_name="wan2.6-i2v").json()["total"] == 0
    assert api.list(model_name="wan2.7-videoedit").json()["total"] == 3
    assert [d["task_id"] for d in api.list(api_key_id=by_id[c]["api_key_id"]).json()["data"]] == [c]
    assert api.list(region="cn-beijing").json()["total"] == 0
    p = api.list(page_no=2, page_size=2).json()
    assert p["total"] == 3 and p["total_page"] == 2 and len(p["data"]) == 1
    _err(api.list(start_time="2026-01-01"), 400, "InvalidParameter")
    assert Api(emu, key=OTHER_ACCOUNT_KEY).list().json()["total"] == 1


def test_list_window_is_at_most_24_hours(emu: Emulator, clock: ManualClock, media: MediaServer) -> None:
    api = Api(emu)
    tid = api.create(media.url("clip.mp4"), resolution="720P")
    now = clock.now()
    day = api.list(start_time=compact(now - 86400), end_time=compact(now)).json()  # exactly 24 h
    assert [d["task_id"] for d in day["data"]] == [tid]
    refused = LIST_WINDOW_REFUSED
    _err(
        api.list(start_time=compact(now - 86401), end_time=compact(now)),
        refused.status,
        refused.code,
        refused.message,
    )
    _err(api.list(start_time=compact(now - 25 * 3600), end_time=compact(now)), 400, "InvalidParameter")
    _err(api.list(start_time=compact(now), end_time=compact(now - 1)), 400, "InvalidParameter")
    # Without start_time the window is the 24 h before end_time (or now): every live task.
    assert api.list(end_time=compact(now + 60)).json()["total"] == 1


def test_tasks_older_than_24_hours_leave_query_list_and_cancel(
    emu: Emulator, clock: ManualClock, media: MediaServer
) -> None:
    api = Api(emu)
    tid = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(24 * 3600 + 1)
    assert api.list().json()["total"] == 0
    start = compact(clock.now() - 86400 - 60)
    assert api.list(start_time=start, end_time=compact(clock.now() - 60)).json()["total"] == 0
    assert api.output(tid) == {"task_id": tid, "task_status": "UNKNOWN"}


def test_at_most_five_running_per_account_fifo_all_finish(emu: Emulator, media: MediaServer) -> None:
    api, second = Api(emu), Api(emu, key=SAME_ACCOUNT_KEY)
    ids = []
    for n in range(8):  # both keys of the account, alternately: one cap for the two
        ids.append((api if n % 2 else second).create(media.url("clip.mp4"), resolution="720P"))
        emu.advance(0.25)  # stay under 5 creates/s
    others = [Api(emu, key=OTHER_ACCOUNT_KEY).create(media.url("clip.mp4"), resolution="720P")]
    others += [Api(emu, key=OTHER_ACCOUNT_KEY).create(media.url("clip.mp4"), resolution="720P")]
    emu.advance(6)
    # The other account's tasks run at once: its cap is its own.
    assert [Api(emu, key=OTHER_ACCOUNT_KEY).output(t)["task_status"] for t in others] == ["RUNNING"] * 2
    seen_max = 0
    for _ in range(40):
        emu.advance(10)
        statuses = [api.output(t)["task_status"] for t in ids]
        running = statuses.count("RUNNING")
        assert running <= 5
        seen_max = max(seen_max, running)
        if all(s == "SUCCEEDED" for s in statuses):
            break
        emu.advance(0)
    assert seen_max == 5
    outs = [api.output(t) for t in ids]
    assert all(o["task_status"] == "SUCCEEDED" for o in outs)
    first_end = min(_ts(o["end_time"]) for o in outs[:5])
    assert all(_ts(o["scheduled_time"]) >= first_end for o in outs[5:])  # waited for a slot
    sched = [_ts(o["scheduled_time"]) for o in outs]
    assert sched[5] <= sched[6] <= sched[7]  # FIFO
    c = emu.counters
    assert c["max_running_seen_per_account"] == {"default": 5, "other": 2}
    assert c["per_account"]["default"]["tasks_created"] == 8 and c["per_key"][API_KEY]["tasks_created"] == 4


def test_rate_limits_429(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    b = body(media.url("clip.mp4"), resolution="720P")
    codes = [api.create_raw(b).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    j = _err(
        api.create_raw(b),
        429,
        "Throttling.RateQuota",
        "Requests rate limit exceeded, please try again later.",
    )
    assert j
    emu.advance(1.01)
    assert api.create_raw(b).status_code == 200
    tid = emu.counters["created_tasks"][0]["task_id"]
    codes = [api.query(tid).status_code for _ in range(21)]
    assert codes == [200] * 20 + [429]
    _err(api.query(tid), 429, "Throttling.RateQuota")
    emu.advance(1.01)
    assert api.query(tid).status_code == 200
    c = emu.counters
    assert c["throttled"] == 4 and c["tasks_created"] == 6 and c["creates_rejected"] == 2


@pytest.mark.parametrize("endpoint", ["list", "cancel"])
def test_list_and_cancel_are_limited_to_20_per_second_per_account(
    emu: Emulator, media: MediaServer, endpoint: str
) -> None:
    api, second, other = Api(emu), Api(emu, key=SAME_ACCOUNT_KEY), Api(emu, key=OTHER_ACCOUNT_KEY)
    tid = api.create(media.url("clip.mp4"), resolution="720P")

    def call(client: Api) -> Any:
        return client.list() if endpoint == "list" else client.cancel(tid)

    codes = [call(api if n % 2 else second).status_code for n in range(20)]  # the keys share it
    assert 429 not in codes
    _err(call(api), 429, "Throttling.RateQuota")
    _err(call(second), 429, "Throttling.RateQuota")
    assert call(other).status_code != 429  # another account's limit is its own
    assert api.query(tid).status_code == 200  # and each endpoint has its own 20
    emu.advance(1.01)
    assert call(api).status_code != 429


def test_rate_limit_can_be_disabled(media: MediaServer) -> None:
    with Emulator(api_key=API_KEY, clock=ManualClock(), rate_limit=False) as e:
        api = Api(e)
        assert all(api.create_raw(body(media.url("clip.mp4"))).status_code == 200 for _ in range(8))
