"""template.yaml, read as data: what deploys is what the code expects, and nothing more is allowed.

No network and no AWS: the template is parsed with local.cfn (the same reader the local stack
uses) and linted with cfn-lint as a library.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from local.cfn import Resolver, load_template, parameter_values

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

# Statements allowed to use Resource "*", each with the reason no resource can be named.
# (Tracing's xray:PutTraceSegments comes from SAM's managed policy, not from our statements;
# metrics go out as EMF log lines, so no cloudwatch:PutMetricData is needed.)
RESOURCE_STAR_ALLOWLIST: dict[frozenset[str], str] = {}

# Managed policies SAM attaches by itself (basic execution, X-Ray, SQS poller): not ours to list.
EXEMPT_ENV_PREFIXES = ("POWERTOOLS_", "AWS_", "_HANDLER", "LAMBDA_")

CONTRACT_RESOURCES = {
    "MediaBucket": "AWS::S3::Bucket",
    "MediaBucketPolicy": "AWS::S3::BucketPolicy",
    "IngestQueue": "AWS::SQS::Queue",
    "IngestDLQ": "AWS::SQS::Queue",
    "IngestQueuePolicy": "AWS::SQS::QueuePolicy",
    "IncomingObjectRule": "AWS::Events::Rule",
    "CompleteQueue": "AWS::SQS::Queue",
    "CompleteDLQ": "AWS::SQS::Queue",
    "LongClipQueue": "AWS::SQS::Queue",
    "LongClipDLQ": "AWS::SQS::Queue",
    "LongClipDLQAlarm": "AWS::CloudWatch::Alarm",
    "JobTable": "AWS::DynamoDB::Table",
    "JobTopic": "AWS::SNS::Topic",
    "ApiKeySecret": "AWS::SecretsManager::Secret",
    "CommonLayer": "AWS::Serverless::LayerVersion",
    "MediaLayer": "AWS::Serverless::LayerVersion",
    "SubmitFunction": "AWS::Serverless::Function",
    "PollFunction": "AWS::Serverless::Function",
    "CompleteFunction": "AWS::Serverless::Function",
    "LongClipFunction": "AWS::Serverless::Function",
    "LongClipLogGroup": "AWS::Logs::LogGroup",
}
CONTRACT_OUTPUTS = {
    "BucketName",
    "JobTableName",
    "IngestQueueUrl",
    "IngestDLQUrl",
    "CompleteQueueUrl",
    "CompleteDLQUrl",
    "LongClipQueueUrl",
    "LongClipDLQUrl",
    "TopicArn",
    "ApiKeySecretArn",
    "EventBusName",
    "SubmitFunctionName",
    "PollFunctionName",
    "CompleteFunctionName",
    "LongClipFunctionName",
}
CONTRACT_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
    "BUCKET_NAME",
    "JOB_TABLE_NAME",
    "INCOMING_PREFIX",
    "EDITED_PREFIX",
    "FAILED_PREFIX",
    "WORK_PREFIX",
    "DASHSCOPE_REGION",
    "DASHSCOPE_WORKSPACE_ID",
    "DASHSCOPE_BASE_URL",
    "API_KEY_SECRET_ID",
    "MAX_CONCURRENT_TASKS",
    "COMPLETE_QUEUE_URL",
    "LONG_CLIP_QUEUE_URL",
    "EVENT_BUS_NAME",
    "TOPIC_ARN",
    "JOB_RETENTION_DAYS",
    "PRESIGN_TTL_SECONDS",
    "PRICE_PER_SECOND_720P",
    "PRICE_PER_SECOND_1080P",
    "PRICE_CURRENCY",
    "DAILY_BUDGET",
    "MONTHLY_BUDGET",
}


# ------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of(template, "AWS::Serverless::Function")


def function_setting(template: dict[str, Any], logical_id: str, name: str) -> Any:
    properties = template["Resources"][logical_id]["Properties"]
    return properties.get(name, template["Globals"]["Function"].get(name))


def getatt_target(value: Any, attribute: str) -> str:
    """The logical ID in {"Fn::GetAtt": [id, attribute]}."""
    assert isinstance(value, dict) and "Fn::GetAtt" in value, value
    logical_id, got = value["Fn::GetAtt"]
    assert got == attribute, value
    return str(logical_id)


def globals_env(template: dict[str, Any]) -> dict[str, Any]:
    return template["Globals"]["Function"]["Environment"]["Variables"]


def effective_layers(template: dict[str, Any], logical_id: str) -> list[Any]:
    """The layers a function deploys with: SAM concatenates Globals' list and the function's own."""
    own = template["Resources"][logical_id]["Properties"].get("Layers", [])
    return [*template["Globals"]["Function"].get("Layers", []), *own]


def sqs_event(template: dict[str, Any], function_id: str) -> dict[str, Any]:
    """The Properties of a function's (one) SQS event source."""
    (event,) = [
        e for e in template["Resources"][function_id]["Properties"]["Events"].values() if e["Type"] == "SQS"
    ]
    return dict(event["Properties"])


def dummy_resolver(template: dict[str, Any], **overrides: str) -> Resolver:
    """Resolves the template with its defaults (or `overrides`) and made-up physical names."""
    resolver = Resolver(
        template=template,
        parameters={**parameter_values(template), **overrides},
        pseudo={
            "AWS::Region": "ap-southeast-1",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::StackName": "wanedit",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    for logical_id in template["Resources"]:
        resolver.refs[logical_id] = f"phys-{logical_id.lower()}"
        for attribute in ("Arn", "QueueName", "TopicName"):
            resolver.attributes[(logical_id, attribute)] = f"{attribute.lower()}-{logical_id.lower()}"
    return resolver


def policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every hand-written statement: inline function policies, IAM resources, resource policies."""
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, function in functions(template).items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                found += [(logical_id, s) for s in policy["Statement"]]
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [properties.get("PolicyDocument")]
        documents += [p.get("PolicyDocument") for p in properties.get("Policies", []) if isinstance(p, dict)]
        for document in documents:
            if isinstance(document, dict):
                found += [(logical_id, s) for s in document.get("Statement", [])]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def pattern_matches(pattern: Any, event: Any) -> bool:
    """EventBridge matching for the subset of pattern syntax the template uses (values, prefix)."""
    if isinstance(pattern, dict):
        if not isinstance(event, dict):
            return False
        return all(key in event and pattern_matches(sub, event[key]) for key, sub in pattern.items())
    for candidate in pattern:
        if isinstance(candidate, dict):
            (operator, operand), *rest = candidate.items()
            assert not rest and operator == "prefix", f"matcher does not know {candidate}"
            if isinstance(event, str) and event.startswith(operand):
                return True
        elif candidate == event:
            return True
    return False


def s3_event(bucket: str, key: str, detail_type: str = "Object Created") -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": detail_type,
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}, "reason": "PutObject"},
    }


# ------------------------------------------------------------------ lint and shape


def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import ManualArgs, lint_file

    # Informational checks too (explicit deletion policies, queue retention): the template is clean of them.
    config = ManualArgs(regions=["ap-southeast-1", "us-east-1"], include_checks=["I"])
    matches = lint_file(TEMPLATE, config=config)
    assert [str(m) for m in matches] == []


def test_contract_resources_outputs_and_transform(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    for logical_id, type_ in CONTRACT_RESOURCES.items():
        assert template["Resources"][logical_id]["Type"] == type_, logical_id
    assert set(template["Outputs"]) >= CONTRACT_OUTPUTS


def test_globals_runtime_and_env_contract(template: dict[str, Any]) -> None:
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    assert function["Layers"] == [{"Ref": "CommonLayer"}]
    assert set(globals_env(template)) == CONTRACT_ENV
    assert globals_env(template)["POWERTOOLS_SERVICE_NAME"] == "wanedit"


@pytest.mark.parametrize(("detailed", "disabled"), [("false", "true"), ("true", "false")])
def test_the_xray_sdk_traces_only_when_detailed_tracing_is_asked_for(
    template: dict[str, Any], detailed: str, disabled: str
) -> None:
    assert parameter_values(template)["DetailedTracing"] == "false"
    resolver = dummy_resolver(template, DetailedTracing=detailed)
    assert resolver.resolve(globals_env(template))["POWERTOOLS_TRACE_DISABLED"] == disabled


def test_parameter_defaults(template: dict[str, Any]) -> None:
    values = parameter_values(template)
    assert values["IncomingPrefix"] == "incoming/"
    assert values["EditedPrefix"] == "edited/"
    assert values["FailedPrefix"] == "failed/"
    assert values["DashscopeRegion"] == "singapore"
    assert values["MaxConcurrentTasks"] == "5"
    assert values["ExistingBucketName"] == ""
    assert values["ApiKeySecretArn"] == ""
    assert values["PollSchedule"] == "rate(1 minute)"
    assert values["EventBusName"] == "default"
    assert values["WorkPrefix"] == "work/"
    assert values["WorkFilesExpireAfterDays"] == "3"
    # Outputs and working files never land under the watched prefix (and vice versa), or the
    # pipeline feeds itself.
    prefixes = [
        values["IncomingPrefix"],
        values["EditedPrefix"],
        values["FailedPrefix"],
        values["WorkPrefix"],
    ]
    for a in prefixes:
        for b in prefixes:
            assert a == b or not a.startswith(b), (a, b)


def test_rules_keep_the_prefixes_apart(template: dict[str, Any]) -> None:
    assertions = template["Rules"]["DistinctPrefixes"]["Assertions"]
    pairs = {frozenset(ref["Ref"] for ref in a["Assert"]["Fn::Not"][0]["Fn::Equals"]) for a in assertions}
    names = ["IncomingPrefix", "EditedPrefix", "FailedPrefix", "WorkPrefix"]
    assert pairs == {frozenset((a, b)) for a in names for b in names if a < b}


def test_layer_and_functions_build_for_arm64(template: dict[str, Any]) -> None:
    for logical_id, content_uri in (("CommonLayer", "layers/common/"), ("MediaLayer", "layers/media/")):
        layer = template["Resources"][logical_id]
        assert layer["Properties"]["ContentUri"] == content_uri
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
        assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
        assert (REPO / content_uri / "requirements.txt").is_file()
    for logical_id, function in functions(template).items():
        assert function["Properties"]["Handler"] == "app.lambda_handler", logical_id
        assert re.fullmatch(r"functions/[a-z_]+/", function["Properties"]["CodeUri"]), logical_id
    poll = template["Resources"]["PollFunction"]["Properties"]
    assert poll["Events"]["Tick"]["Properties"]["Schedule"] == {"Ref": "PollSchedule"}


def test_no_function_reserves_concurrency(template: dict[str, Any]) -> None:
    """Reserving any fails the deploy on a 10-concurrency account (the unreserved pool stays >= 10);
    one poller at a time comes from its lease (tests/integration/test_lease.py)."""
    assert "ReservedConcurrentExecutions" not in TEMPLATE.read_text()
    assert "ReservedConcurrentExecutions" not in template["Globals"]["Function"]


def pinned(requirements: Path) -> dict[str, str]:
    """name -> version of a requirements file's `name==version` lines (options and -r skipped)."""
    lines = [line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines()]
    pins = [line.split("==", 1) for line in lines if line and not line.startswith("-")]
    return {name.split("[", 1)[0].lower(): version for name, version in pins}


def test_media_layer_pins_the_pyav_the_tests_use() -> None:
    """PyAV (FFmpeg inside its wheel) and Pillow (preview sheets) only in the media layer, at the
    versions the tests encode and draw with."""
    media = pinned(REPO / "layers/media/requirements.txt")
    assert media == {"av": "18.1.0", "pillow": "13.0.0"}
    dev = pinned(REPO / "requirements-dev.txt")
    assert {name: dev.get(name) for name in media} == media
    assert not media.keys() & pinned(REPO / "layers/common/requirements.txt").keys()


def test_only_the_long_clip_function_gets_the_media_layer(template: dict[str, Any]) -> None:
    for logical_id in functions(template):
        layers = effective_layers(template, logical_id)
        assert len(layers) == len({str(layer) for layer in layers}), f"{logical_id}: a layer twice"
        if logical_id == "LongClipFunction":
            assert layers == [{"Ref": "CommonLayer"}, {"Ref": "MediaLayer"}]
        else:
            assert layers == [{"Ref": "CommonLayer"}], logical_id


def test_long_clip_function_has_room_for_media_work(template: dict[str, Any]) -> None:
    properties = template["Resources"]["LongClipFunction"]["Properties"]
    assert properties["CodeUri"] == "functions/longclip/"
    assert properties["Handler"] == "app.lambda_handler"
    assert function_setting(template, "LongClipFunction", "MemorySize") == 3008
    assert function_setting(template, "LongClipFunction", "Timeout") == 900
    assert properties["EphemeralStorage"] == {"Size": 4096}
    assert function_setting(template, "LongClipFunction", "Runtime") == "python3.13"
    assert function_setting(template, "LongClipFunction", "Architectures") == ["arm64"]
    assert function_setting(template, "LongClipFunction", "Tracing") == "Active"
    event = sqs_event(template, "LongClipFunction")
    assert getatt_target(event["Queue"], "Arn") == "LongClipQueue"
    assert event["BatchSize"] == 1
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "LongClipMaxConcurrency"}}


def test_every_function_logs_to_its_own_retained_group(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = template["Resources"][group_id]
        assert group["Type"] == "AWS::Logs::LogGroup", logical_id
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
        short = function["Properties"]["CodeUri"].split("/")[1]
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{short}"}


def test_sqs_event_sources_cap_their_concurrency(template: dict[str, Any]) -> None:
    """MaximumConcurrency on every SQS event source, a parameter within Lambda's 2..1000."""
    for logical_id in consumed_queues(template).values():
        maximum = sqs_event(template, logical_id)["ScalingConfig"]["MaximumConcurrency"]
        parameter = template["Parameters"][maximum["Ref"]]
        assert parameter["Type"] == "Number"
        assert parameter["MinValue"] == 2 and parameter["MaxValue"] == 1000, logical_id
        assert 2 <= parameter["Default"] <= 1000, logical_id


def test_the_defaults_fit_an_account_with_a_concurrency_quota_of_10(template: dict[str, Any]) -> None:
    """A 10-quota account has all 10 unreserved: the event sources' maxima and the poller must fit,
    with room left, so neither the sources throttle nor the poller starves."""
    maxima = [
        template["Parameters"][sqs_event(template, f)["ScalingConfig"]["MaximumConcurrency"]["Ref"]][
            "Default"
        ]
        for f in consumed_queues(template).values()
    ]
    assert sum(maxima) + 1 <= 10 - 2, maxima  # + the poller, and 2 left for anything else there


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"EditedToInfrequentAccessAfterDays": 29}, True),
        ({"EditedToInfrequentAccessAfterDays": 1}, True),
        ({"EditedToInfrequentAccessAfterDays": 30}, False),
        ({"EditedToInfrequentAccessAfterDays": 0}, False),
        ({"SourceArchiveStorageClass": "STANDARD_IA", "ArchiveSourcesAfterDays": 29}, True),
        ({"SourceArchiveStorageClass": "STANDARD_IA", "ArchiveSourcesAfterDays": 30}, False),
        ({"SourceArchiveStorageClass": "STANDARD_IA", "ArchiveSourcesAfterDays": 0}, False),
        ({"SourceArchiveStorageClass": "GLACIER_IR", "ArchiveSourcesAfterDays": 1}, False),
        ({"SourceArchiveStorageClass": "DEEP_ARCHIVE", "ArchiveSourcesAfterDays": 7}, False),
    ],
)
def test_rules_refuse_transitions_s3_would_refuse(
    template: dict[str, Any], overrides: dict[str, Any], refused: bool
) -> None:
    """S3 moves nothing to STANDARD_IA before day 30; the Rules refuse such values before any
    resource is made (local.cfn evaluates the template's Rules as CloudFormation does)."""
    from local.cfn import TemplateError

    if refused:
        with pytest.raises(TemplateError, match="at least 30"):
            parameter_values(template, overrides)
    else:
        parameter_values(template, overrides)


def test_the_local_pump_plays_the_functions_as_declared(template: dict[str, Any]) -> None:
    from local import pump

    assert set(pump.FUNCTIONS.values()) == set(functions(template))
    for name, logical_id in pump.FUNCTIONS.items():
        assert pump.TIMEOUT_SECONDS[name] == function_setting(template, logical_id, "Timeout"), name
        assert pump.MEMORY_MB[name] == function_setting(template, logical_id, "MemorySize"), name
        code_dir = template["Resources"][logical_id]["Properties"]["CodeUri"]
        assert code_dir == f"functions/{name}/", name
    consumers = {pump.FUNCTIONS[name]: size for name, size in pump.BATCH_SIZES.items()}
    assert set(consumers) == set(consumed_queues(template).values())
    for logical_id, size in consumers.items():
        assert sqs_event(template, logical_id)["BatchSize"] == size, logical_id


def test_samconfig() -> None:
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["stack_name"] == "wanedit"
    assert deploy["resolve_s3"] is True
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert config["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
    assert config["default"]["validate"]["parameters"]["lint"] is True


# ------------------------------------------------------------------ code <-> template


USE_CASE_IMPORT = re.compile(r"^from (wanedit\.usecases\.\w+) import", re.MULTILINE)


@pytest.mark.parametrize(
    "logical_id", ["SubmitFunction", "PollFunction", "CompleteFunction", "LongClipFunction"]
)
def test_handler_imports_as_lambda_would(template: dict[str, Any], logical_id: str) -> None:
    """CodeUri + Handler import the way Lambda does it: CodeUri and the function's layers on
    sys.path, a fresh interpreter (a cold start), the Globals env set. Skipped only while the
    handler file, or a use-case module it imports, is absent."""
    properties = template["Resources"][logical_id]["Properties"]
    module, attribute = properties["Handler"].rsplit(".", 1)
    code_dir = REPO / properties["CodeUri"]
    if not (code_dir / f"{module}.py").is_file():
        pytest.skip(f"{code_dir / module}.py not written yet")
    for use_case in USE_CASE_IMPORT.findall((code_dir / f"{module}.py").read_text()):
        base = REPO / "layers/common" / use_case.replace(".", "/")
        if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
            pytest.skip(f"{base.relative_to(REPO)} not written yet")
    layer_dirs = [
        str(REPO / template["Resources"][layer["Ref"]]["Properties"]["ContentUri"])
        for layer in effective_layers(template, logical_id)
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {name: str(value) for name, value in dummy_resolver(template).resolve(globals_env(template)).items()}
    )
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(code_dir), *layer_dirs]),
            "AWS_DEFAULT_REGION": "ap-southeast-1",
            "AWS_REGION": "ap-southeast-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    probe = f"import {module}; assert callable({module}.{attribute}), '{attribute} is not callable'"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=code_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{logical_id}: {properties['Handler']} does not import:\n{result.stderr}"


def test_every_setting_is_declared_in_globals(template: dict[str, Any]) -> None:
    settings = pytest.importorskip(
        "wanedit.settings", reason="layers/common/wanedit/settings.py not there yet"
    )
    declared = set(globals_env(template))
    names = set()
    for field_name, info in settings.Settings.model_fields.items():
        alias = info.validation_alias or info.alias or field_name
        names.add(str(alias).upper())
    missing = {n for n in names if not n.startswith(EXEMPT_ENV_PREFIXES)} - declared
    assert not missing, f"the code reads env vars the stack does not set: {sorted(missing)}"
    unused = {n for n in declared if not n.startswith(EXEMPT_ENV_PREFIXES)} - names
    assert not unused, f"Globals sets env vars no setting reads: {sorted(unused)}"


def test_settings_accept_every_value_the_template_allows(template: dict[str, Any]) -> None:
    """A deployer can choose nothing (within the Parameters' bounds) that the functions reject."""
    settings = pytest.importorskip(
        "wanedit.settings", reason="layers/common/wanedit/settings.py not there yet"
    )
    env_template = globals_env(template)
    base = {k: str(v) for k, v in dummy_resolver(template).resolve(env_template).items()}
    settings.Settings(**base)  # the defaults
    for variable, value in env_template.items():
        if not (isinstance(value, dict) and set(value) == {"Ref"}):
            continue
        spec = template["Parameters"].get(value["Ref"])
        if spec is None:
            continue
        choices = [str(v) for v in spec.get("AllowedValues", [])]
        choices += [str(spec[k]) for k in ("MinValue", "MaxValue") if k in spec]
        for choice in choices:
            settings.Settings(**{**base, variable: choice})


ENV_READ = re.compile(r"""os\.(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["']([A-Z0-9_]+)["']""")


def test_no_env_var_is_read_outside_the_declared_set(template: dict[str, Any]) -> None:
    declared = set(globals_env(template))
    sources = [
        *sorted((REPO / "layers/common/wanedit").rglob("*.py")),
        *sorted((REPO / "functions").rglob("*.py")),
    ]
    undeclared = {
        f"{path.relative_to(REPO)}: {name}"
        for path in sources
        for name in ENV_READ.findall(path.read_text(encoding="utf-8"))
        if name not in declared and not name.startswith(EXEMPT_ENV_PREFIXES)
    }
    assert not undeclared, sorted(undeclared)


# ------------------------------------------------------------------ queues, DLQs, alarms


def consumed_queues(template: dict[str, Any]) -> dict[str, str]:
    """Queue logical ID -> consuming function logical ID."""
    consumed = {}
    for logical_id, function in functions(template).items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                consumed[getatt_target(event["Properties"]["Queue"], "Arn")] = logical_id
    return consumed


def test_consumed_queues_have_dlqs_and_sound_timeouts(template: dict[str, Any]) -> None:
    consumed = consumed_queues(template)
    assert consumed == {
        "IngestQueue": "SubmitFunction",
        "CompleteQueue": "CompleteFunction",
        "LongClipQueue": "LongClipFunction",
    }
    for queue_id, function_id in consumed.items():
        queue = template["Resources"][queue_id]["Properties"]
        redrive = queue["RedrivePolicy"]
        dlq_id = getatt_target(redrive["deadLetterTargetArn"], "Arn")
        assert template["Resources"][dlq_id]["Type"] == "AWS::SQS::Queue"
        assert redrive["maxReceiveCount"] == 5
        assert queue["SqsManagedSseEnabled"] is True
        assert template["Resources"][dlq_id]["Properties"]["SqsManagedSseEnabled"] is True
        event = next(
            e
            for e in template["Resources"][function_id]["Properties"]["Events"].values()
            if e["Type"] == "SQS"
        )
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        timeout = function_setting(template, function_id, "Timeout")
        window = event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
        assert queue["VisibilityTimeout"] >= 6 * timeout + window, queue_id
        # A message moved to the DLQ keeps its enqueue time: the DLQ must keep it longer.
        dlq_retention = template["Resources"][dlq_id]["Properties"]["MessageRetentionPeriod"]
        assert dlq_retention > queue["MessageRetentionPeriod"], queue_id


def test_every_dlq_has_an_alarm(template: dict[str, Any]) -> None:
    dlqs = {
        getatt_target(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"], "Arn")
        for q in resources_of(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    assert dlqs == {"IngestDLQ", "CompleteDLQ", "LongClipDLQ"}
    alarmed = {}
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("MetricName") != "ApproximateNumberOfMessagesVisible":
            continue
        for dimension in properties["Dimensions"]:
            if dimension["Name"] == "QueueName":
                alarmed[getatt_target(dimension["Value"], "QueueName")] = properties
    for dlq in dlqs:
        assert dlq in alarmed, f"{dlq} has no alarm"
        assert alarmed[dlq]["Threshold"] == 0
        assert alarmed[dlq]["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarmed[dlq]["AlarmActions"], f"{dlq}'s alarm notifies no one"


def test_rule_delivers_to_the_ingest_queue_with_a_dlq(template: dict[str, Any]) -> None:
    rule = template["Resources"]["IncomingObjectRule"]["Properties"]
    (target,) = rule["Targets"]
    assert getatt_target(target["Arn"], "Arn") == "IngestQueue"
    assert getatt_target(target["DeadLetterConfig"]["Arn"], "Arn") == "IngestDLQ"
    policy = template["Resources"]["IngestQueuePolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["IncomingObjectRule", "Arn"]
    }
    assert {"Ref": "IngestQueue"} in policy["Queues"]


# ------------------------------------------------------------------ IAM


def test_no_wildcard_actions(template: dict[str, Any]) -> None:
    for owner, statement in policy_statements(template):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*", (owner, statement)
            assert not str(action).endswith(":*"), f"{owner}: service-wide {action}"


def test_resource_star_only_where_allowlisted(template: dict[str, Any]) -> None:
    for owner, statement in policy_statements(template):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement.get("Resource")):
            continue
        actions = frozenset(as_list(statement["Action"]))
        assert actions in RESOURCE_STAR_ALLOWLIST, f"{owner}: Resource '*' for {sorted(actions)}"


def test_no_managed_policy_by_arn_and_policy_templates_are_scoped(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        for policy in function["Properties"].get("Policies", []):
            assert not isinstance(policy, str), f"{logical_id}: managed policy {policy}"
            if "Statement" in policy:
                continue
            if list(policy) == ["Ref"]:  # a managed policy of this stack, scoped in its own document
                assert template["Resources"][policy["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy"
                continue
            ((name, arguments),) = policy.items()
            assert arguments, f"{logical_id}: {name} is not scoped to a resource"
            for value in arguments.values():
                assert value != "*", f"{logical_id}: {name} with *"


def s3_object_grants(template: dict[str, Any], logical_id: str) -> dict[str, set[str]]:
    """Function -> {action: {prefix parameter names}} for its object-level S3 grants (a grant on one
    kind of key under a prefix reads `EditedPrefix*.estimate.json`)."""
    grants: dict[str, set[str]] = {}
    for policy in template["Resources"][logical_id]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            s3_actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
            if not s3_actions:
                continue
            for resource in as_list(statement["Resource"]):
                text = (
                    resource["Fn::Sub"][0] if isinstance(resource["Fn::Sub"], list) else resource["Fn::Sub"]
                )
                if text.endswith("${Bucket}"):
                    assert s3_actions == ["s3:ListBucket"], (logical_id, statement)
                    continue
                match = re.fullmatch(
                    r"arn:\$\{AWS::Partition\}:s3:::\$\{Bucket\}/\$\{(\w+Prefix)\}\*([\w.]*)", text
                )
                assert match, f"{logical_id}: S3 object grant not scoped to a prefix: {text}"
                scope = match.group(1) + (f"*{match.group(2)}" if match.group(2) else "")
                for action in s3_actions:
                    grants.setdefault(action, set()).add(scope)
    return grants


def test_s3_grants_are_prefix_scoped_and_nobody_writes_incoming(template: dict[str, Any]) -> None:
    submit = s3_object_grants(template, "SubmitFunction")
    poll = s3_object_grants(template, "PollFunction")
    complete = s3_object_grants(template, "CompleteFunction")
    longclip = s3_object_grants(template, "LongClipFunction")
    assert submit["s3:GetObject"] == {"IncomingPrefix"}
    # The poller presigns queued jobs' inputs: clips, and long clips' segments under work/.
    assert poll["s3:GetObject"] == poll["s3:GetObjectVersion"] == {"IncomingPrefix", "WorkPrefix"}
    assert poll["s3:PutObject"] == {"FailedPrefix"}
    # The submitter writes reports, and a dry run's estimate beside where the edit would land.
    assert submit["s3:PutObject"] == {"FailedPrefix", "EditedPrefix*.estimate.json"}
    # A segment's edit waits under work/ to be stitched; everything else lands in edited/ or failed/.
    assert complete["s3:PutObject"] == {"EditedPrefix", "FailedPrefix", "WorkPrefix"}
    # Multipart uploads (and so their aborts) only where results stream in; reports are one PUT.
    assert complete["s3:AbortMultipartUpload"] == {"EditedPrefix", "WorkPrefix"}
    assert longclip["s3:GetObject"] == {"IncomingPrefix", "WorkPrefix", "EditedPrefix"}
    # A preview reads the saved edit's version in ranges.
    assert longclip["s3:GetObjectVersion"] == {"IncomingPrefix", "WorkPrefix", "EditedPrefix"}
    assert longclip["s3:PutObject"] == {"WorkPrefix", "EditedPrefix", "FailedPrefix"}
    assert longclip["s3:AbortMultipartUpload"] == {"WorkPrefix", "EditedPrefix"}
    assert "s3:GetObject" not in complete  # nothing it reads back (issue 14: ReadInputs unused)
    # Deleting is for working files only, and only the long-clip worker does it.
    for grants in (submit, poll, complete, longclip):
        deletes = {a: p for a, p in grants.items() if a.startswith("s3:Delete")}
        assert grants is longclip or not deletes
    assert {a: p for a, p in longclip.items() if a.startswith("s3:Delete")} == {
        "s3:DeleteObject": {"WorkPrefix"}
    }
    # Tagging an input (for the lifecycle rules) is the only change any function makes under it.
    tagging = {"s3:PutObjectTagging", "s3:PutObjectVersionTagging"}
    for grants in (submit, poll, complete, longclip):
        for action, prefixes in grants.items():
            if action.startswith(("s3:Put", "s3:Delete", "s3:Abort")) and action not in tagging:
                assert "IncomingPrefix" not in prefixes, f"{action} on the watched prefix"
    assert all("IncomingPrefix" not in submit.get(a, set()) | poll.get(a, set()) for a in tagging)
    # The persisting functions tag what they persisted from: the long clip's, like any clip's.
    for grants in (complete, longclip):
        assert grants["s3:PutObjectVersionTagging"] == {"IncomingPrefix"}


def policy_templates(template: dict[str, Any], logical_id: str, name: str) -> list[dict[str, Any]]:
    """The arguments of each use of one SAM policy template by a function."""
    policies = template["Resources"][logical_id]["Properties"].get("Policies", [])
    return [policy[name] for policy in policies if isinstance(policy, dict) and name in policy]


def test_who_sends_to_which_queue(template: dict[str, Any]) -> None:
    sends = {
        logical_id: {
            getatt_target(arguments["QueueName"], "QueueName")
            for arguments in policy_templates(template, logical_id, "SQSSendMessagePolicy")
        }
        for logical_id in functions(template)
    }
    assert sends == {
        "SubmitFunction": {"LongClipQueue"},  # a long clip goes to be split
        "PollFunction": {"CompleteQueue", "LongClipQueue"},  # successes; long clips' backstop
        "CompleteFunction": {"LongClipQueue"},  # the last segment saved asks for the stitch
        "LongClipFunction": {"LongClipQueue"},  # a stitched clip's preview, drawn by itself later
    }


def test_long_clip_function_reaches_what_it_calls(template: dict[str, Any]) -> None:
    def one(name: str) -> dict[str, Any]:
        (arguments,) = policy_templates(template, "LongClipFunction", name)
        return arguments

    assert {"Ref": "ApiKeyReadPolicy"} in template["Resources"]["LongClipFunction"]["Properties"]["Policies"]
    assert one("EventBridgePutEventsPolicy") == {"EventBusName": {"Ref": "EventBusName"}}
    assert getatt_target(one("SNSPublishMessagePolicy")["TopicName"], "TopicName") == "JobTopic"
    sids = {
        statement["Sid"]
        for policy in template["Resources"]["LongClipFunction"]["Properties"]["Policies"]
        for statement in policy.get("Statement", [])
    }
    assert {"JobTable", "ListBucket", "PublishToEncryptedTopic"} <= sids


def test_lifecycle_rules_archive_only_edited_sources(template: dict[str, Any]) -> None:
    rules = template["Resources"]["MediaBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_id = {r["Fn::If"][1]["Id"]: r["Fn::If"] for r in rules if isinstance(r, dict) and "Fn::If" in r}
    assert set(by_id) == {
        "ArchiveEditedSources",
        "DeleteEditedSources",
        "EditedToInfrequentAccess",
        "ExpireFailedReports",
    }
    for rule_id in ("ArchiveEditedSources", "DeleteEditedSources"):
        condition, rule, _ = by_id[rule_id]
        assert rule["Prefix"] == {"Ref": "IncomingPrefix"}
        assert rule["TagFilters"] == [{"Key": "wanedit-state", "Value": "PERSISTED"}]
    assert by_id["EditedToInfrequentAccess"][1]["Prefix"] == {"Ref": "EditedPrefix"}
    assert by_id["ExpireFailedReports"][1]["Prefix"] == {"Ref": "FailedPrefix"}
    conditions = template["Conditions"]
    for condition, parameter in (
        ("ArchiveSources", "ArchiveSourcesAfterDays"),
        ("DeleteSources", "DeleteSourcesAfterDays"),
        ("EditedToInfrequentAccess", "EditedToInfrequentAccessAfterDays"),
        ("ExpireFailedReports", "FailedReportsExpireAfterDays"),
    ):
        assert conditions[condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, 0]}]}


def test_working_files_expire(template: dict[str, Any]) -> None:
    rules = template["Resources"]["MediaBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r.get("Id") == "ExpireWorkFiles"]  # unconditional, unlike the Fn::Ifs
    assert rule == {
        "Id": "ExpireWorkFiles",
        "Status": "Enabled",
        "Prefix": {"Ref": "WorkPrefix"},
        "ExpirationInDays": {"Ref": "WorkFilesExpireAfterDays"},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    days = template["Parameters"]["WorkFilesExpireAfterDays"]
    assert days["Type"] == "Number"
    assert days["Default"] == 3
    assert days["MinValue"] >= 1  # 0 would be "never": working files must go


# ------------------------------------------------------------------ bucket and rule


def test_bucket_is_private_encrypted_versioned_and_notifies_eventbridge(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["MediaBucket"]
    assert bucket["Condition"] == "CreateBucket"
    properties = bucket["Properties"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_bucket_policy_denies_insecure_transport(template: dict[str, Any]) -> None:
    policy = template["Resources"]["MediaBucketPolicy"]
    assert policy["Condition"] == "CreateBucket"
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert deny, "no TLS-only statement"
    assert deny[0]["Principal"] == "*"
    resources = as_list(deny[0]["Resource"])
    assert {"Fn::GetAtt": ["MediaBucket", "Arn"]} in resources
    assert {"Fn::Sub": "${MediaBucket.Arn}/*"} in resources


def test_rule_matches_only_the_incoming_prefix_of_the_bucket(template: dict[str, Any]) -> None:
    resolver = dummy_resolver(template)
    pattern = resolver.resolve(template["Resources"]["IncomingObjectRule"]["Properties"]["EventPattern"])
    bucket = resolver.resolve(globals_env(template)["BUCKET_NAME"])
    assert pattern_matches(pattern, s3_event(bucket, "incoming/a b/c.mp4"))
    assert pattern_matches(pattern, s3_event(bucket, "incoming/c.json"))
    assert not pattern_matches(pattern, s3_event(bucket, "edited/a b/c.mp4"))
    assert not pattern_matches(pattern, s3_event(bucket, "edited/incoming/c.mp4"))
    assert not pattern_matches(pattern, s3_event(bucket, "failed/c.json"))
    # Long clips' working files: segments as split and as edited never trigger anything.
    work = resolver.resolve(globals_env(template)["WORK_PREFIX"])
    assert work == "work/"
    assert not pattern_matches(pattern, s3_event(bucket, "work/j-0123/segments/000.mp4"))
    assert not pattern_matches(pattern, s3_event(bucket, "work/j-0123/edited/000.mp4"))
    assert not pattern_matches(pattern, s3_event(bucket, "work/incoming/c.mp4"))
    assert not pattern_matches(pattern, s3_event("another-bucket", "incoming/c.mp4"))
    assert not pattern_matches(pattern, s3_event(bucket, "incoming/c.mp4", "Object Deleted"))


def test_rule_uses_the_existing_bucket_when_given(template: dict[str, Any]) -> None:
    resolver = Resolver(
        template=template,
        parameters=parameter_values(template, {"ExistingBucketName": "their-bucket"}),
        pseudo={},
    )
    assert not resolver.resource_enabled("MediaBucket")
    assert not resolver.resource_enabled("MediaBucketPolicy")
    pattern = resolver.resolve(template["Resources"]["IncomingObjectRule"]["Properties"]["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == ["their-bucket"]
    assert resolver.resolve(globals_env(template)["BUCKET_NAME"]) == "their-bucket"


# ------------------------------------------------------------------ table, secret


def test_job_table(template: dict[str, Any]) -> None:
    table = template["Resources"]["JobTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "ActiveByNextPoll"
    assert index["KeySchema"] == [
        {"AttributeName": "active", "KeyType": "HASH"},
        {"AttributeName": "next_poll_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"pk": "S", "active": "S", "next_poll_at": "N"}


def test_secret_holds_no_value_of_ours(template: dict[str, Any]) -> None:
    secret = template["Resources"]["ApiKeySecret"]
    assert secret["Condition"] == "CreateApiKeySecret"
    assert "SecretString" not in secret["Properties"]
    assert "GenerateSecretString" not in secret["Properties"]
    text = TEMPLATE.read_text()
    assert not re.search(r"\bsk-[A-Za-z0-9]{8,}", text), "an API key in the template?"


def test_every_checkov_skip_names_a_check_and_says_why(template: dict[str, Any]) -> None:
    """`make checkov` (part of `make lint`) must pass with skips only where a resource's Metadata
    gives the reason next to the check it waives."""
    seen = 0
    for logical_id, resource in template["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        ids = [skip["id"] for skip in skips]
        assert len(ids) == len(set(ids)), logical_id
        for skip in skips:
            assert set(skip) == {"id", "comment"}, (logical_id, skip)
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
            assert len(skip["comment"].split()) >= 10, f"{logical_id} {skip['id']}: say why"
            seen += 1
    assert seen, "no skips found: has the Metadata format changed?"


SECRET = "arn:aws:secretsmanager:ap-southeast-1:123456789012:secret:team/dashscope-key-AbC123"


@pytest.mark.parametrize(
    ("given", "allowed", "denied"),
    [
        # The full ARN, as describe-secret shows it: that secret only.
        (SECRET, [SECRET], [SECRET.replace("dashscope-key", "other-key"), f"{SECRET}x"]),
        # Without the random suffix: the secret of that name, whatever its suffix; not a longer name.
        (
            SECRET.removesuffix("-AbC123"),
            [SECRET, SECRET.replace("AbC123", "zZ9yX8")],
            [
                SECRET.replace("dashscope-key", "dashscope-key-old"),
                SECRET.replace("dashscope-key", "other-key"),
            ],
        ),
    ],
    ids=["full-arn", "arn-without-suffix"],
)
def test_the_functions_read_exactly_the_given_secret(
    template: dict[str, Any], given: str, allowed: list[str], denied: list[str]
) -> None:
    """ApiKeySecretArn with or without Secrets Manager's 6-character suffix: GetSecretValue is
    authorized on the secret's full ARN (what AWS evaluates), and on no other secret."""
    from tests.iam.actions import Authorization
    from tests.iam.policy import Statement, evaluate

    resolver = Resolver(
        template=template,
        parameters=parameter_values(template, {"ApiKeySecretArn": given}),
        pseudo={"AWS::Partition": "aws", "AWS::Region": "ap-southeast-1", "AWS::AccountId": "123456789012"},
    )
    document = resolver.resolve(template["Resources"]["ApiKeyReadPolicy"]["Properties"]["PolicyDocument"])
    statements = [
        Statement(
            "ApiKeyReadPolicy",
            s["Sid"],
            s["Effect"],
            (s["Action"],),
            tuple(as_list(s["Resource"])),
            {},
            False,
        )
        for s in document["Statement"]
    ]
    for arn in allowed:
        assert evaluate(statements, Authorization("secretsmanager:GetSecretValue", arn)), arn
    for arn in denied:
        assert evaluate(statements, Authorization("secretsmanager:GetSecretValue", arn)) is None, arn
    for function in functions(template).values():
        assert {"Ref": "ApiKeyReadPolicy"} in function["Properties"]["Policies"]


def _statement(template: dict[str, Any], logical_id: str, sid: str) -> dict[str, Any]:
    (found,) = [
        statement
        for policy in template["Resources"][logical_id]["Properties"]["Policies"]
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if statement["Sid"] == sid
    ]
    return dict(found)


def test_job_table_grants_are_what_each_function_calls(template: dict[str, Any]) -> None:
    """Trimmed to the calls the IAM recorder saw (tests/iam): item reads and conditional writes by
    key; only the poller queries, and only its index; only intake deletes (a pair's waiting half)."""
    expected = {
        "SubmitFunction": [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ],
        "PollFunction": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        "CompleteFunction": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        "LongClipFunction": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    }
    for logical_id, actions in expected.items():
        statement = _statement(template, logical_id, "JobTable")
        assert statement["Action"] == actions, logical_id
        assert statement["Resource"] == {"Fn::GetAtt": ["JobTable", "Arn"]}
        for policy in template["Resources"][logical_id]["Properties"]["Policies"]:
            assert "DynamoDBCrudPolicy" not in policy, logical_id
    query = _statement(template, "PollFunction", "JobTableActiveIndex")
    assert query["Action"] == "dynamodb:Query"
    assert query["Resource"] == {"Fn::Sub": "${JobTable.Arn}/index/ActiveByNextPoll"}


def test_list_bucket_is_scoped_by_prefix(template: dict[str, Any]) -> None:
    """ListBucket lets a HEAD of a missing key answer 404 (not 403), under the prefixes each function
    reads, and lets the long-clip worker list its work files; a listing of another prefix is refused.
    IfExists: a 404's own check may carry no s3:prefix (AWS does not say), and must never turn 403."""
    expected = {
        "SubmitFunction": ["IncomingPrefix"],
        "PollFunction": ["IncomingPrefix", "WorkPrefix"],
        "CompleteFunction": ["IncomingPrefix"],
        "LongClipFunction": ["IncomingPrefix", "WorkPrefix", "EditedPrefix"],
    }
    for logical_id, prefixes in expected.items():
        statement = _statement(template, logical_id, "ListBucket")
        assert statement["Condition"] == {
            "StringLikeIfExists": {"s3:prefix": [{"Fn::Sub": f"${{{p}}}*"} for p in prefixes]}
        }, logical_id


def test_no_grant_the_recorder_found_unused_is_back(template: dict[str, Any]) -> None:
    """The grants issue 14 found without a call site stay removed."""
    text = TEMPLATE.read_text()
    assert "s3:ListMultipartUploadParts" not in text
    assert "DynamoDBCrudPolicy" not in text
    for logical_id in ("SubmitFunction", "PollFunction"):
        for policy in template["Resources"][logical_id]["Properties"]["Policies"]:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                assert not {"s3:GetObjectTagging", "s3:GetObjectVersionTagging"} & set(
                    as_list(statement["Action"])
                )
    sids = {
        s["Sid"]
        for p in template["Resources"]["CompleteFunction"]["Properties"]["Policies"]
        for s in p.get("Statement", [])
        if isinstance(p, dict)
    }
    assert "ReadInputs" not in sids
