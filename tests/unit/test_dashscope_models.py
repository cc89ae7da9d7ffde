"""Models of the wan2.7-videoedit API against the reference's own examples (copied verbatim)."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from wanedit.dashscope import (
    API_TZ,
    CreateTaskRequest,
    CreateTaskResponse,
    TaskList,
    TaskResponse,
    TaskStatus,
    Usage,
    format_list_time,
    parse_api_time,
)

# --- the reference's two curl requests, verbatim (shell quoting included) --------------------

CURL_INSTRUCTION_ONLY = r"""curl --location 'https://{WorkspaceId}.ap-southeast-1.maas.aliyuncs.com/api/v1/services/aigc/video-generation/video-synthesis' \
        -H 'X-DashScope-Async: enable' \
        -H "Authorization: Bearer $DASHSCOPE_API_KEY" \
        -H 'Content-Type: application/json' \
        -d '{
        "model": "wan2.7-videoedit",
        "input": {
            "prompt": "Convert the entire scene to a claymation style",
            "media": [
                {
                    "type": "video",
                    "url": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20260402/ldnfdf/wan2.7-videoedit-style-change.mp4"
                }
            ]
        },
        "parameters": {
            "resolution": "720P",
            "prompt_extend": true,
            "watermark": true
        }
    }'"""  # noqa: E501

CURL_WITH_REFERENCE_IMAGE = r"""curl --location 'https://{WorkspaceId}.ap-southeast-1.maas.aliyuncs.com/api/v1/services/aigc/video-generation/video-synthesis' \
        -H 'X-DashScope-Async: enable' \
        -H "Authorization: Bearer $DASHSCOPE_API_KEY" \
        -H 'Content-Type: application/json' \
        -d '{
        "model": "wan2.7-videoedit",
        "input": {
            "prompt": "Replace the girl''s clothes in the video with the clothes from the image",
            "media": [
                {
                    "type": "video",
                    "url": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20260403/nlspwm/T2VA_22.mp4"
                },
                {
                    "type": "reference_image",
                    "url": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20260402/fwjpqf/wan2.7-videoedit-change-clothes.png"
                }
            ]
        },
        "parameters": {
            "resolution": "720P",
            "prompt_extend": true,
            "watermark": true
        }
    }'"""  # noqa: E501


def parse_curl(command: str) -> tuple[str, dict[str, str], str]:
    """(url, headers, body) of a curl command, unquoted exactly as a shell would."""
    args = shlex.split(command.replace("\\\n", " "))
    url, headers, body = "", {}, ""
    i = 1
    while i < len(args):
        if args[i] == "-H":
            name, _, value = args[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 2
        elif args[i] == "-d":
            body = args[i + 1]
            i += 2
        elif args[i] == "--location":
            url = args[i + 1]
            i += 2
        else:
            i += 1
    return url, headers, body


REFERENCE_CREATE_BODIES = [
    pytest.param(CURL_INSTRUCTION_ONLY, id="instruction-only"),
    pytest.param(CURL_WITH_REFERENCE_IMAGE, id="instruction-and-reference-image"),
]


def request_from_curl_body(body: dict) -> CreateTaskRequest:
    """Build the request through the typed constructors (not by validating the same dict back)."""
    from wanedit.dashscope import Media, TaskInput, TaskParameters

    return CreateTaskRequest(
        input=TaskInput(
            prompt=body["input"]["prompt"],
            media=[Media(type=m["type"], url=m["url"]) for m in body["input"]["media"]],
        ),
        parameters=TaskParameters(resolution="720P", prompt_extend=True, watermark=True),
    )


@pytest.mark.parametrize("curl", REFERENCE_CREATE_BODIES)
def test_create_body_is_the_references_curl_body(curl: str) -> None:
    _, _, raw = parse_curl(curl)
    expected = json.loads(raw)
    body = request_from_curl_body(expected).to_body()
    assert body == expected
    # Same key order as the reference, too (model, input{prompt, media}, parameters).
    assert json.dumps(body) == json.dumps(expected)


def test_curl_quoting_is_the_shells() -> None:
    # '...girl''s...' inside single quotes is two adjacent strings: the body says "girls".
    _, headers, raw = parse_curl(CURL_WITH_REFERENCE_IMAGE)
    assert json.loads(raw)["input"]["prompt"].startswith("Replace the girls clothes")
    assert headers["X-DashScope-Async"] == "enable"


def test_only_set_parameters_are_sent() -> None:
    request = CreateTaskRequest.model_validate(
        {"input": {"media": [{"type": "video", "url": "https://x/v.mp4"}]}, "parameters": {"seed": 0}}
    )
    assert request.to_body() == {
        "model": "wan2.7-videoedit",
        "input": {"media": [{"type": "video", "url": "https://x/v.mp4"}]},
        "parameters": {"seed": 0},
    }
    bare = CreateTaskRequest.model_validate(
        {"input": {"media": [{"type": "video", "url": "https://x/v.mp4"}]}}
    )
    assert "parameters" not in bare.to_body()
    empty = CreateTaskRequest.model_validate(
        {"input": {"media": [{"type": "video", "url": "https://x/v.mp4"}]}, "parameters": {}}
    )
    assert "parameters" not in empty.to_body()


def test_every_parameter_and_input_field_serializes() -> None:
    request = CreateTaskRequest.model_validate(
        {
            "input": {
                "prompt": "p",
                "negative_prompt": "n",
                "media": [
                    {"type": "video", "url": "https://x/v.mp4"},
                    {"type": "reference_image", "url": "data:image/png;base64,AAAA"},
                ],
            },
            "parameters": {
                "resolution": "1080P",
                "ratio": "9:16",
                "duration": 5,
                "audio_setting": "origin",
                "prompt_extend": False,
                "watermark": False,
                "seed": 2147483647,
            },
        }
    )
    body = request.to_body()
    assert body["input"]["negative_prompt"] == "n"
    assert body["parameters"] == {
        "resolution": "1080P",
        "ratio": "9:16",
        "duration": 5,
        "audio_setting": "origin",
        "prompt_extend": False,
        "watermark": False,
        "seed": 2147483647,
    }


VIDEO = {"type": "video", "url": "https://x/v.mp4"}
IMAGE = {"type": "reference_image", "url": "https://x/i.png"}


@pytest.mark.parametrize(
    "input_, parameters",
    [
        ({"media": []}, None),
        ({"media": [IMAGE]}, None),  # no video
        ({"media": [VIDEO, VIDEO]}, None),  # two videos
        ({"media": [VIDEO, IMAGE, IMAGE, IMAGE, IMAGE, IMAGE]}, None),  # five images
        ({"media": [{"type": "audio", "url": "https://x/a.mp3"}]}, None),
        ({"media": [{"type": "video", "url": ""}]}, None),
        ({"media": [VIDEO], "unknown": 1}, None),
        ({"media": [VIDEO]}, {"resolution": "480P"}),
        ({"media": [VIDEO]}, {"ratio": "21:9"}),
        ({"media": [VIDEO]}, {"duration": 1}),
        ({"media": [VIDEO]}, {"duration": 11}),
        ({"media": [VIDEO]}, {"duration": "5"}),
        ({"media": [VIDEO]}, {"audio_setting": "none"}),
        ({"media": [VIDEO]}, {"prompt_extend": "yes"}),
        ({"media": [VIDEO]}, {"watermark": 1}),
        ({"media": [VIDEO]}, {"seed": -1}),
        ({"media": [VIDEO]}, {"seed": 2147483648}),
        ({"media": [VIDEO]}, {"size": "1280*720"}),
    ],
)
def test_requests_outside_the_reference_are_refused(input_: dict, parameters: dict | None) -> None:
    body: dict = {"input": input_}
    if parameters is not None:
        body["parameters"] = parameters
    with pytest.raises(ValidationError):
        CreateTaskRequest.model_validate(body)


@pytest.mark.parametrize("duration", [0, 2, 10])
def test_duration_zero_or_two_to_ten(duration: int) -> None:
    request = CreateTaskRequest.model_validate(
        {"input": {"media": [VIDEO]}, "parameters": {"duration": duration}}
    )
    assert request.to_body()["parameters"] == {"duration": duration}


def test_four_reference_images_are_allowed() -> None:
    CreateTaskRequest.model_validate({"input": {"media": [VIDEO, IMAGE, IMAGE, IMAGE, IMAGE]}})


def test_media_repr_does_not_dump_data_uris() -> None:
    uri = "data:image/png;base64," + "A" * 10_000
    request = CreateTaskRequest.model_validate(
        {"input": {"media": [VIDEO, {"type": "reference_image", "url": uri}]}}
    )
    assert len(repr(request)) < 1000
    assert request.to_body()["input"]["media"][1]["url"] == uri


# --- responses: every example of the reference ---------------------------------------------

CREATE_SUCCESS = """{
    "output": {
        "task_status": "PENDING",
        "task_id": "0385dc79-5ff8-4d82-bcb6-xxxxxx"
    },
    "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx"
}"""

QUERY_SUCCEEDED = """{
    "request_id": "f16ae7e9-d518-92f8-a02c-xxxxxx",
    "output": {
        "task_id": "05e68c7e-850c-49e4-b866-xxxxxx",
        "task_status": "SUCCEEDED",
        "submit_time": "2026-04-03 00:08:03.576",
        "scheduled_time": "2026-04-03 00:08:13.408",
        "end_time": "2026-04-03 00:11:57.286",
        "orig_prompt": "Replace the girl''s clothes in the video with the clothes from the image",
        "video_url": "https://dashscope-a717.oss-accelerate.aliyuncs.com/xxx.mp4?xxxx"
    },
    "usage": {
        "duration": 10.04,
        "input_video_duration": 5.02,
        "output_video_duration": 5.02,
        "video_count": 1,
        "SR": 720
    }
}"""

QUERY_FAILED = """{
    "request_id": "e5d70b02-ebd3-98ce-9fe8-759d7d7b107d",
    "output": {
        "task_id": "86ecf553-d340-4e21-af6e-a0c6a421c010",
        "task_status": "FAILED",
        "code": "InvalidParameter",
        "message": "The size is not match xxxxxx"
    }
}"""

QUERY_EXPIRED = """{
    "request_id": "a4de7c32-7057-9f82-8581-xxxxxx",
    "output": {
        "task_id": "502a00b1-19d9-4839-a82f-xxxxxx",
        "task_status": "UNKNOWN"
    }
}"""

SDK_CREATE = """{
    "request_id": "f16ae7e9-d518-92f8-a02c-xxxxxx",
    "output": {
        "task_id": "05e68c7e-850c-49e4-b866-xxxxxx",
        "task_status": "PENDING",
        "video_url": ""
    },
    "usage": null,
    "status_code": 200,
    "code": "",
    "message": ""
}"""

SDK_QUERY_SR_STRING = """{
    "request_id": "0a15ad3c-cde7-9f7e-b8d2-xxxxxx",
    "output": {
        "task_id": "0025d1e1-009a-4f53-9c27-xxxxx",
        "task_status": "SUCCEEDED",
        "video_url": "https://dashscope-a717.oss-accelerate.aliyuncs.com/xxx.mp4?Expires=xxx",
        "orig_prompt": "Replace the clothes of the girl in the video with the clothes from the image.",
        "submit_time": "2026-04-10 17:21:01.719",
        "scheduled_time": "2026-04-10 17:21:13.182",
        "end_time": "2026-04-10 17:31:41.286"
    },
    "usage": {
        "video_count": 1,
        "duration": 10.08,
        "input_video_duration": 5.04,
        "output_video_duration": 5.04,
        "SR": "720"
    },
    "status_code": 200,
    "code": "",
    "message": ""
}"""

SDK_QUERY_EXTRA_USAGE = """{
    "status_code": 200,
    "request_id": "d6c3c865-34e9-98a9-a53d-xxxxxx",
    "code": null,
    "message": "",
    "output": {
        "task_id": "1de7c853-755a-454a-91bc-xxxxxx",
        "task_status": "SUCCEEDED",
        "video_url": "https://dashscope-a717.oss-accelerate.aliyuncs.com/xxx.mp4?Expires=xxxx",
        "submit_time": "2026-04-10 17:16:30.821",
        "scheduled_time": "2026-04-10 17:16:46.379",
        "end_time": "2026-04-10 17:24:59.352",
        "orig_prompt": "Replace the clothes of the girl in the video with the clothes from the image."
    },
    "usage": {
        "video_count": 1,
        "video_duration": 0,
        "video_ratio": "",
        "duration": 10.08,
        "input_video_duration": 5.04,
        "output_video_duration": 5.04,
        "SR": 720
    }
}"""

SDK_CREATE_ASYNC = """{
    "status_code": 200,
    "request_id": "f16ae7e9-d518-92f8-a02c-xxxxxx",
    "code": "",
    "message": "",
    "output": {
        "task_id": "05e68c7e-850c-49e4-b866-xxxxxx",
        "task_status": "PENDING",
        "video_url": ""
    },
    "usage": null
}"""

CST = timezone(timedelta(hours=8))


def test_create_success() -> None:
    created = CreateTaskResponse.model_validate_json(CREATE_SUCCESS)
    assert created.request_id == "4909100c-7b5a-9f92-bfe5-xxxxxx"
    assert created.output.task_id == "0385dc79-5ff8-4d82-bcb6-xxxxxx"
    assert created.output.task_status is TaskStatus.PENDING
    assert created.usage is None


def test_query_succeeded() -> None:
    response = TaskResponse.model_validate_json(QUERY_SUCCEEDED)
    out = response.output
    assert response.request_id == "f16ae7e9-d518-92f8-a02c-xxxxxx"
    assert out.task_id == "05e68c7e-850c-49e4-b866-xxxxxx"
    assert out.task_status is TaskStatus.SUCCEEDED
    assert out.submit_time == datetime(2026, 4, 3, 0, 8, 3, 576000, tzinfo=CST)
    assert out.submit_time == datetime(2026, 4, 2, 16, 8, 3, 576000, tzinfo=UTC)
    assert out.scheduled_time == datetime(2026, 4, 3, 0, 8, 13, 408000, tzinfo=CST)
    assert out.end_time == datetime(2026, 4, 3, 0, 11, 57, 286000, tzinfo=CST)
    assert out.raw_times == {
        "submit_time": "2026-04-03 00:08:03.576",
        "scheduled_time": "2026-04-03 00:08:13.408",
        "end_time": "2026-04-03 00:11:57.286",
    }
    assert out.orig_prompt == "Replace the girl''s clothes in the video with the clothes from the image"
    assert out.video_url == "https://dashscope-a717.oss-accelerate.aliyuncs.com/xxx.mp4?xxxx"
    assert out.code is None and out.message is None
    assert response.usage == Usage(
        duration=10.04, input_video_duration=5.02, output_video_duration=5.02, video_count=1, SR=720
    )


def test_query_failed() -> None:
    out = TaskResponse.model_validate_json(QUERY_FAILED).output
    assert out.task_status is TaskStatus.FAILED
    assert out.task_status.is_terminal
    assert out.code == "InvalidParameter"
    assert out.message == "The size is not match xxxxxx"
    assert out.video_url is None


def test_query_expired_is_unknown() -> None:
    response = TaskResponse.model_validate_json(QUERY_EXPIRED)
    assert response.output.task_id == "502a00b1-19d9-4839-a82f-xxxxxx"
    assert response.output.task_status is TaskStatus.UNKNOWN
    assert response.usage is None


@pytest.mark.parametrize("text", [SDK_CREATE, SDK_CREATE_ASYNC])
def test_sdk_shaped_create(text: str) -> None:
    created = CreateTaskResponse.model_validate_json(text)
    assert created.status_code == 200
    assert created.usage is None
    assert created.code is None and created.message is None  # "" carries nothing
    assert created.output.video_url is None
    assert created.output.task_status is TaskStatus.PENDING


def test_sdk_query_with_string_sr() -> None:
    response = TaskResponse.model_validate_json(SDK_QUERY_SR_STRING)
    assert response.usage is not None
    assert response.usage.SR == 720
    assert response.usage.video_count == 1
    assert response.output.end_time == datetime(2026, 4, 10, 9, 31, 41, 286000, tzinfo=UTC)


def test_sdk_query_with_extra_usage_fields_keeps_them() -> None:
    response = TaskResponse.model_validate_json(SDK_QUERY_EXTRA_USAGE)
    usage = response.usage
    assert usage is not None
    assert usage.SR == 720
    assert usage.duration == 10.08
    assert usage.model_extra == {"video_duration": 0, "video_ratio": ""}
    # What the poller stores in the manifest: documented names, extras kept.
    assert usage.model_dump(mode="json", by_alias=True) == {
        "duration": 10.08,
        "input_video_duration": 5.04,
        "output_video_duration": 5.04,
        "video_count": 1,
        "SR": 720,
        "video_duration": 0,
        "video_ratio": "",
    }
    assert response.code is None
    assert response.status_code == 200


@pytest.mark.parametrize("sr", [720, "720", "720P", "720p", 720.0, "1080"])
def test_sr_coerces_to_int(sr: object) -> None:
    assert Usage.model_validate({"SR": sr}).SR in (720, 1080)


def test_unknown_fields_are_kept_everywhere() -> None:
    data = json.loads(QUERY_SUCCEEDED)
    data["new_top"] = 1
    data["output"]["new_output"] = {"a": 1}
    data["usage"]["new_usage"] = "x"
    response = TaskResponse.model_validate(data)
    assert response.model_extra == {"new_top": 1}
    assert response.output.model_extra == {"new_output": {"a": 1}}
    assert response.usage is not None and response.usage.model_extra == {"new_usage": "x"}


def test_times_round_trip_through_json_dump() -> None:
    response = TaskResponse.model_validate_json(QUERY_SUCCEEDED)
    again = TaskResponse.model_validate(response.model_dump(mode="json"))
    assert again == response


def test_missing_task_id_is_invalid() -> None:
    with pytest.raises(ValidationError):
        TaskResponse.model_validate({"request_id": "r", "output": {"task_status": "PENDING"}})


# --- task status ------------------------------------------------------------------------------


def test_status_terminal_and_active() -> None:
    assert {s for s in TaskStatus if s.is_terminal} == {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.CANCELED,
    }
    assert {s for s in TaskStatus if s.is_active} == {
        TaskStatus.PENDING,
        TaskStatus.RUNNING,
        TaskStatus.SUSPENDED,  # held by the service, alive: neither ended nor unknown
    }
    assert not TaskStatus.UNKNOWN.is_terminal and not TaskStatus.UNKNOWN.is_active


def test_suspended_is_known_and_unlisted_status_is_unknown_and_case_is_tolerated() -> None:
    assert TaskStatus("SUSPENDED") is TaskStatus.SUSPENDED
    assert TaskStatus("suspended") is TaskStatus.SUSPENDED
    assert TaskStatus("PAUSED") is TaskStatus.UNKNOWN
    assert TaskStatus("succeeded") is TaskStatus.SUCCEEDED
    assert TaskStatus("RUNNING") == "RUNNING"


# --- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-04-03 00:08:03.576",
        "2026-04-03T00:08:03.576+08:00",
        "2026-04-02T16:08:03.576Z",
        "2026-04-02T16:08:03.576+00:00",
        1775146083576,  # epoch milliseconds
        "1775146083576",
        1775146083.576,  # epoch seconds
        datetime(2026, 4, 3, 0, 8, 3, 576000),  # naive means UTC+8
    ],
)
def test_parse_api_time(value: object) -> None:
    parsed = parse_api_time(value)
    assert parsed is not None and parsed.tzinfo is not None
    assert abs(parsed - datetime(2026, 4, 2, 16, 8, 3, 576000, tzinfo=UTC)) < timedelta(milliseconds=1)


def test_parse_api_time_without_millis_and_compact() -> None:
    assert parse_api_time("2026-04-03 00:08:03") == datetime(2026, 4, 3, 0, 8, 3, tzinfo=API_TZ)
    assert parse_api_time("20260403000803") == datetime(2026, 4, 3, 0, 8, 3, tzinfo=API_TZ)


@pytest.mark.parametrize("value", [None, "", "yesterday", True])
def test_unparseable_times_are_none_but_text_is_kept(value: object) -> None:
    assert parse_api_time(value) is None
    out = TaskResponse.model_validate({"output": {"task_id": "t", "submit_time": "yesterday"}}).output
    assert out.submit_time is None
    assert out.raw_times == {"submit_time": "yesterday"}


def test_format_list_time_is_utc_plus_8() -> None:
    assert format_list_time(datetime(2026, 4, 2, 16, 8, 3, tzinfo=UTC)) == "20260403000803"
    assert format_list_time(datetime(2026, 4, 3, 0, 8, 3, tzinfo=CST)) == "20260403000803"
    with pytest.raises(ValueError, match="aware"):
        format_list_time(datetime(2026, 4, 3, 0, 8, 3))


# --- task list ----------------------------------------------------------------------------------


# The body of the official Java SDK's own list test (TestBatchTextEmbedding.testListParameters):
# the documented entry, times in epoch milliseconds.
JAVA_SDK_LIST = {
    "request_id": "31a80745-990d-958b-ad1c-fd51f17a6996",
    "data": [
        {
            "api_key_id": "1",
            "caller_parent_id": "2",
            "caller_uid": "3",
            "end_time": 1691561396394,
            "gmt_create": 1691561394828,
            "model_name": "pre-offline-file-embedding",
            "region": "cn-beijing",
            "request_id": "5ddcdba0-9b22-93c1-946e-1eb152b77efa",
            "start_time": 1691561395295,
            "status": "SUCCEEDED",
            "task_id": "bb7c1bdb-d8de-4619-83b8-9ad3c3313def",
            "user_api_unique_key": (
                "apikey:v1:embeddings:text-embedding:text-embedding:pre-offline-file-embedding"
            ),
        }
    ],
    "total": 1,
    "total_page": 1,
    "page_no": 1,
    "page_size": 10,
}


def test_task_list_documented_entry() -> None:
    page = TaskList.model_validate(JAVA_SDK_LIST)
    (item,) = page.data
    assert item.status is TaskStatus.SUCCEEDED
    assert item.gmt_create == datetime(2023, 8, 9, 6, 9, 54, 828000, tzinfo=UTC)
    assert item.start_time == datetime(2023, 8, 9, 6, 9, 55, 295000, tzinfo=UTC)
    assert item.end_time == datetime(2023, 8, 9, 6, 9, 56, 394000, tzinfo=UTC)
    assert (item.api_key_id, item.caller_parent_id, item.caller_uid) == ("1", "2", "3")
    assert item.user_api_unique_key.startswith("apikey:v1:")  # type: ignore[union-attr]
    assert (item.region, item.request_id) == ("cn-beijing", "5ddcdba0-9b22-93c1-946e-1eb152b77efa")
    assert item.model_extra == {}  # every documented field is declared
    assert (page.page_no, page.page_size, page.total, page.total_page) == (1, 10, 1, 1)


def test_task_list_is_tolerant() -> None:
    """Text times, numeric ids, fields the documents do not list, absent times: all parse."""
    page = TaskList.model_validate(
        {
            "request_id": "r",
            "data": [
                {
                    "task_id": "t1",
                    "status": "SUCCEEDED",
                    "model_name": "wan2.7-videoedit",
                    "gmt_create": "2026-04-03 00:08:03.576",
                    "start_time": "1775146093408",
                    "end_time": "2026-04-03 00:11:57.286",
                    "api_key_id": 1234,
                    "caller_uid": "",
                    "code": None,
                },
                {"task_id": "t2", "status": "SUSPENDED"},
            ],
            "page_no": "1",
            "total": 2,
        }
    )
    first, second = page.data
    assert first.gmt_create == datetime(2026, 4, 3, 0, 8, 3, 576000, tzinfo=CST)
    assert first.start_time == datetime(2026, 4, 3, 0, 8, 13, 408000, tzinfo=CST)
    assert first.raw_times["end_time"] == "2026-04-03 00:11:57.286"
    assert first.api_key_id == "1234" and first.caller_uid is None
    assert first.model_extra == {"code": None}
    assert second.status is TaskStatus.SUSPENDED and second.status.is_active
    assert second.gmt_create is None and second.end_time is None
    assert page.page_no == 1 and page.total_page is None


def test_task_list_with_null_data() -> None:
    assert TaskList.model_validate({"request_id": "r", "data": None, "total": 0}).data == []
