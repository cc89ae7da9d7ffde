"""The sidecar model and parse_sidecar: every field's limits, strict JSON types, hostile bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from wanedit.problems import Problem
from wanedit.references import BucketKeyRef, DataUriRef, HttpsUrlRef, classify_reference
from wanedit.sidecar import Sidecar, json_schema, parse_sidecar
from wanedit.sidecar_document import MAX_SIDECAR_BYTES, SidecarError

ROOT = Path(__file__).resolve().parents[2]


def problems_of(doc: Any) -> list[Problem]:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    with pytest.raises(SidecarError) as caught:
        parse_sidecar(raw)
    return caught.value.problems


def fields_of(doc: Any) -> list[str]:
    return [p.field for p in problems_of(doc)]


def test_minimal_sidecar_sends_no_parameters() -> None:
    sidecar = parse_sidecar(b'{"prompt": "Convert the scene to claymation"}')
    assert sidecar.api_parameters().as_dict() == {}
    assert sidecar.reference_images == []


def test_api_parameters_are_only_those_set_and_named_as_the_api() -> None:
    doc = {
        "prompt": "p",
        "resolution": "720P",
        "ratio": "9:16",
        "duration": 0,
        "audio_setting": "origin",
        "prompt_extend": False,
        "watermark": True,
        "seed": 0,
        "negative_prompt": None,
    }
    params = parse_sidecar(json.dumps(doc).encode()).api_parameters().as_dict()
    assert params == {
        "resolution": "720P",
        "ratio": "9:16",
        "duration": 0,
        "audio_setting": "origin",
        "prompt_extend": False,
        "watermark": True,
        "seed": 0,
    }


def test_null_means_not_set() -> None:
    assert parse_sidecar(b'{"prompt": "p", "ratio": null, "seed": null}').api_parameters().as_dict() == {}


@pytest.mark.parametrize(
    "char",
    [pytest.param("a", id="ascii"), pytest.param("字", id="cjk"), pytest.param("😀", id="emoji")],
)
def test_prompt_5000_characters_ok_5001_refused(char: str) -> None:
    assert len(parse_sidecar(json.dumps({"prompt": char * 5000}).encode()).prompt) == 5000
    [problem] = problems_of({"prompt": char * 5001})
    assert problem.field == "sidecar.prompt"
    assert "5001 characters" in problem.fix and "at most 5000" in problem.fix
    assert len(problem.value) < 200  # cut for the report


@pytest.mark.parametrize("prompt", ["", "   \n\t"], ids=["empty", "blank"])
def test_prompt_must_say_something(prompt: str) -> None:
    assert fields_of({"prompt": prompt}) == ["sidecar.prompt"]


def test_prompt_required() -> None:
    [problem] = problems_of({"ratio": "1:1"})
    assert (problem.field, problem.value) == ("sidecar.prompt", None)
    assert problem.fix.startswith('add "prompt"')


@pytest.mark.parametrize("n, ok", [(500, True), (501, False)])
def test_negative_prompt_500(n: int, ok: bool) -> None:
    doc = {"prompt": "p", "negative_prompt": "字" * n}
    if ok:
        assert parse_sidecar(json.dumps(doc).encode()).negative_prompt == "字" * n
    else:
        assert fields_of(doc) == ["sidecar.negative_prompt"]


@pytest.mark.parametrize(
    "field, bad, hint",
    [
        ("resolution", "720p", '"720P"'),
        ("resolution", "4K", '"720P" or "1080P"'),
        ("ratio", "21:9", '"16:9"'),
        ("ratio", "16/9", '"16:9"'),
        ("audio_setting", "none", '"auto" or "origin"'),
        ("audio_setting", "ORIGIN", '"origin"'),
        ("resolution", 720, '"720P" or "1080P"'),
    ],
)
def test_enums(field: str, bad: Any, hint: str) -> None:
    [problem] = problems_of({"prompt": "p", field: bad})
    assert problem.field == f"sidecar.{field}"
    assert hint in problem.fix


@pytest.mark.parametrize("duration", [0, 2, 5, 10])
def test_duration_ok(duration: int) -> None:
    assert parse_sidecar(json.dumps({"prompt": "p", "duration": duration}).encode()).duration == duration


@pytest.mark.parametrize(
    "duration, words",
    [
        pytest.param(1, "use 2-10", id="1"),
        pytest.param(11, "use 2-10", id="11"),
        pytest.param(-1, "use 2-10", id="negative"),
        pytest.param("5", "without quotes", id="string"),
        pytest.param(5.0, "write 5", id="float-whole"),
        pytest.param(5.5, "whole number", id="float"),
        pytest.param(True, "true", id="bool"),
    ],
)
def test_duration_refused(duration: Any, words: str) -> None:
    [problem] = problems_of({"prompt": "p", "duration": duration})
    assert problem.field == "sidecar.duration"
    assert words in problem.fix


@pytest.mark.parametrize("seed, ok", [(0, True), (2147483647, True), (-1, False), (2147483648, False)])
def test_seed_bounds(seed: int, ok: bool) -> None:
    doc = {"prompt": "p", "seed": seed}
    if ok:
        assert parse_sidecar(json.dumps(doc).encode()).seed == seed
    else:
        assert fields_of(doc) == ["sidecar.seed"]


@pytest.mark.parametrize("field", ["prompt_extend", "watermark"])
@pytest.mark.parametrize("bad", ["true", 1, 0, None])
def test_booleans_are_json_booleans(field: str, bad: Any) -> None:
    doc = {"prompt": "p", field: bad}
    if bad is None:
        assert parse_sidecar(json.dumps(doc).encode()).api_parameters().as_dict() == {}
        return
    [problem] = problems_of(doc)
    assert problem.field == f"sidecar.{field}"
    if bad == "true":
        assert "write true without quotes" in problem.fix


def test_unknown_field_suggests_the_known_one() -> None:
    [problem] = problems_of({"prompt": "p", "negativ_prompt": "x"})
    assert problem.field == "sidecar.negativ_prompt"
    assert 'did you mean "negative_prompt"' in problem.fix


def test_all_problems_at_once() -> None:
    doc = {"prompt": "", "ratio": "2:1", "duration": 11, "seed": -5, "watermark": "yes", "extra": 1}
    assert sorted(fields_of(doc)) == sorted(
        [
            "sidecar.prompt",
            "sidecar.ratio",
            "sidecar.duration",
            "sidecar.seed",
            "sidecar.watermark",
            "sidecar.extra",
        ]
    )


# --------------------------------------------------------------------------- reference images


@pytest.mark.parametrize(
    "ref, kind",
    [
        ("incoming/refs/jacket.png", BucketKeyRef),
        ("jacket.png", BucketKeyRef),
        ("./refs/my jacket+1%.png", BucketKeyRef),
        ("https://example.com/a.png?X-Amz-Signature=abc", HttpsUrlRef),
        ("https://8.8.8.8/a.png", HttpsUrlRef),
        ("https://[2001:4860:4860::8888]/a.png", HttpsUrlRef),
        ("data:image/png;base64,iVBORw0KGgo=", DataUriRef),
    ],
)
def test_reference_kinds(ref: str, kind: type) -> None:
    assert isinstance(classify_reference(ref), kind)
    assert parse_sidecar(json.dumps({"prompt": "p", "reference_images": [ref]}).encode()).references()


@pytest.mark.parametrize(
    "ref, words",
    [
        pytest.param("http://example.com/a.png", "https://", id="http"),
        pytest.param("ftp://example.com/a.png", "not supported", id="ftp"),
        pytest.param("s3://bucket/a.png", "without s3://", id="s3"),
        pytest.param("https://10.1.2.3/a.png", "private", id="private-ip"),
        pytest.param("https://127.0.0.1/a.png", "private", id="loopback"),
        pytest.param("https://169.254.169.254/latest/meta-data", "private", id="metadata"),
        pytest.param("https://[::1]/a.png", "private", id="ipv6-loopback"),
        pytest.param("https://[fd00::1]/a.png", "private", id="ipv6-ula"),
        pytest.param("https://localhost/a.png", "localhost", id="localhost"),
        pytest.param("https://2130706433/a.png", "dotted", id="decimal-ip"),
        pytest.param("https://0x7f.0.0.1/a.png", "dotted", id="hex-ip"),
        pytest.param("https://user:pw@example.com/a.png", "user:password", id="credentials"),
        pytest.param("https:///a.png", "no host", id="no-host"),
        pytest.param("https://example.com:99999/a.png", "malformed", id="bad-port"),
        pytest.param("data:image/jpg;base64,AAAA", '"image/jpeg"', id="data-jpg-mime"),
        pytest.param("data:image/PNG;base64,AAAA", '"image/png"', id="data-mime-case"),
        pytest.param("data:image/gif;base64,AAAA", "one of", id="data-gif"),
        pytest.param("data:image/png,AAAA", "data:image/png;base64", id="data-not-base64"),
        pytest.param("data:image/png;base64,", "no data", id="data-empty"),
        pytest.param(" jacket.png", "spaces", id="padded"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_reference_refused(ref: str, words: str) -> None:
    [problem] = problems_of({"prompt": "p", "reference_images": [ref]})
    assert problem.field == "sidecar.reference_images[0]"
    assert words in problem.fix
    if ref.startswith("data:"):
        assert problem.value.startswith("data:") and "characters of data" in problem.value


def test_five_references_refused_and_each_bad_entry_still_named() -> None:
    refs = ["a.png", "b.png", "http://x.example/c.png", "d.png", "e.png"]
    assert fields_of({"prompt": "p", "reference_images": refs}) == [
        "sidecar.reference_images",
        "sidecar.reference_images[2]",
    ]


# --------------------------------------------------------------------------- bytes → sidecar


def test_utf8_bom_is_tolerated() -> None:
    assert parse_sidecar(b"\xef\xbb\xbf" + '{"prompt": "変換"}'.encode()).prompt == "変換"


def test_size_limit_is_exactly_1_mib() -> None:
    body = b'{"prompt": "p"}'
    assert parse_sidecar(body + b" " * (MAX_SIDECAR_BYTES - len(body))).prompt == "p"
    [problem] = problems_of(body + b" " * (MAX_SIDECAR_BYTES - len(body) + 1))
    assert (problem.field, problem.limit) == ("sidecar", "at most 1 MB (1,048,576 bytes)")


def test_not_utf8_names_the_byte_offset() -> None:
    [problem] = problems_of(b'{"prompt": "caf\xe9"}')
    assert "offset 15" in problem.fix


def test_not_utf8_after_bom_counts_the_bom() -> None:
    [problem] = problems_of(b'\xef\xbb\xbf{"prompt": "\xff"}')
    assert "offset 15" in problem.fix


@pytest.mark.parametrize(
    "raw, words",
    [
        pytest.param(b'{"prompt": "p",}', "line 1, column 16", id="trailing-comma"),
        pytest.param(b"{\n  \"prompt\": 'p'\n}", "line 2, column 13", id="single-quotes"),
        pytest.param(b"", "line 1, column 1", id="empty-file"),
        pytest.param(b'{"prompt": "p", "seed": NaN}', "NaN", id="nan"),
        pytest.param(b'{"prompt": "p", "seed": ' + b"9" * 5000 + b"}", "not usable JSON", id="huge-int"),
    ],
)
def test_not_json(raw: bytes, words: str) -> None:
    [problem] = problems_of(raw)
    assert problem.field == "sidecar"
    assert words in problem.fix


@pytest.mark.parametrize("raw", [b"[]", b'"prompt"', b"null", b"42"])
def test_not_an_object(raw: bytes) -> None:
    [problem] = problems_of(raw)
    assert (problem.field, problem.limit) == ("sidecar", "a JSON object")


def test_nesting_8_is_parsed_9_is_refused() -> None:
    eight = b'{"prompt": "p", "x": ' + b"[" * 7 + b"]" * 7 + b"}"
    assert fields_of(eight) == ["sidecar.x"]  # parsed, then refused as an unknown field
    nine = b'{"prompt": "p", "x": ' + b"[" * 8 + b"]" * 8 + b"}"
    [problem] = problems_of(nine)
    assert (problem.field, problem.value) == ("sidecar", "nested 9 levels deep")


@pytest.mark.parametrize("raw", [b"[" * 200_000, b'{"a":' * 100_000, b"[" * 1_000_000])
def test_deep_nesting_never_recurses(raw: bytes) -> None:
    raw = raw[:MAX_SIDECAR_BYTES]
    [problem] = problems_of(raw)
    assert problem.field == "sidecar" and "levels" in problem.value


def test_nesting_scan_is_linear_on_escaped_quotes() -> None:
    raw = b'{"prompt": "' + b'\\"' * 500_000  # an unterminated string of escaped quotes, ~1 MB
    started = time.perf_counter()
    [problem] = problems_of(raw)
    assert problem.field == "sidecar" and "not valid JSON" in problem.fix
    assert time.perf_counter() - started < 2.0


def test_brackets_inside_strings_are_not_nesting() -> None:
    prompt = '[[[[[[[[[[{{{{{{{{{{ \\" ]]]'
    assert parse_sidecar(json.dumps({"prompt": prompt}).encode()).prompt == prompt


def test_duplicate_keys_are_ambiguous() -> None:
    problems = problems_of(b'{"prompt": "a", "seed": 1, "prompt": "b"}')
    assert [(p.field, p.limit) for p in problems] == [("sidecar.prompt", "each field once")]


def test_duplicate_keys_and_field_errors_together() -> None:
    assert fields_of(b'{"prompt": "a", "ratio": "1:2", "ratio": "3:1"}') == ["sidecar.ratio", "sidecar.ratio"]


def test_sidecar_error_message_lists_fixes() -> None:
    with pytest.raises(SidecarError, match=r"sidecar\.ratio"):
        parse_sidecar(b'{"prompt": "a", "ratio": "2:1"}')


def test_model_is_frozen_and_strict() -> None:
    sidecar = Sidecar(prompt="p")
    with pytest.raises(ValueError):
        sidecar.prompt = "q"  # type: ignore[misc]


# --------------------------------------------------------------------------- JSON Schema


def test_published_schema_is_current() -> None:
    published = json.loads((ROOT / "schemas" / "sidecar.schema.json").read_text(encoding="utf-8"))
    assert published == json_schema(), (
        "regenerate: python -m wanedit.sidecar --schema > schemas/sidecar.schema.json"
    )


def test_schema_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "common")}
    out = subprocess.run(
        [sys.executable, "-m", "wanedit.sidecar", "--schema"], capture_output=True, check=True, env=env
    ).stdout
    schema = json.loads(out)
    assert schema["$schema"].endswith("2020-12/schema") and schema["$id"]
    # prompt may come from folder defaults or from each edit: the merged result is checked instead
    assert schema["additionalProperties"] is False and schema["required"] == []
    assert set(schema["properties"]) == {
        "prompt",
        "negative_prompt",
        "reference_images",
        "resolution",
        "ratio",
        "duration",
        "audio_setting",
        "prompt_extend",
        "watermark",
        "seed",
        "long_clip",
        "dry_run",
        "edits",
    }
    assert all(prop.get("description") for prop in schema["properties"].values())
    edit = schema["properties"]["edits"]["items"]
    assert edit["required"] == ["name"] and set(edit["properties"]) == set(schema["properties"]) - {
        "edits"
    } | {"name"}


def test_documented_examples_fit_the_published_schema() -> None:
    import jsonschema

    schema = json.loads((ROOT / "schemas" / "sidecar.schema.json").read_text())
    jsonschema.validate({"prompt": "snow", "resolution": "720P", "ratio": "9:16"}, schema)
    jsonschema.validate({"resolution": "720P"}, schema)  # a _defaults.json
    jsonschema.validate({"prompt": "jacket", "edits": [{"name": "red", "prompt": "red jacket"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"prompt": "x", "ratio": "2:1"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"edits": [{"prompt": "no name"}]}, schema)
