"""Each function's IAM policies as SAM expands them, resolved for one stack, and their evaluation.

The template goes through the real SAM transform (tests/infra/sam_transform.py in `.venv-deploy`,
once per template content, cached under .wanedit/), so policy templates such as
SQSSendMessagePolicy are judged by what they expand to. The intrinsics are resolved with
local.cfn's Resolver for the stack the handler runs against, read from the function environment
that stack gave it (BUCKET_NAME, JOB_TABLE_NAME, COMPLETE_QUEUE_URL...): the same names the
handler itself uses, as on Lambda.

Evaluation is IAM's for identity policies in one account: an explicit Deny wins, else any Allow
whose Action, Resource and Condition all match. Not moto's IAMPolicy: it treats `?` in an ARN as a
regular expression and answers DENIED (not "no match") when an Allow's condition fails, and the
secret grant and the prefix-conditioned ListBucket rely on exactly those two.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.cfn import Resolver, TemplateError, load_template, parameter_values
from tests.iam.actions import Authorization

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
DEPLOY_PYTHON = REPO / ".venv-deploy" / "bin" / "python"
CACHE = REPO / ".wanedit" / "iam"

# AWS's managed policies SAM attaches (their documents as AWS publishes them): evaluated, but not
# ours to trim, so never reported as unused.
MANAGED_POLICY_STATEMENTS: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
}
# Grants no SDK call of the function can show, because a service uses them on its behalf.
IMPLIED_GRANTS = {
    "kms:GenerateDataKey*": "SNS encrypts a published message with the topic's key (kms:ViaService)",
    "kms:Decrypt": "SNS encrypts a published message with the topic's key (kms:ViaService)",
}


class DeployVenvMissing(RuntimeError):
    """The SAM transform needs .venv-deploy (`make deploy-venv`)."""


def transformed_template() -> dict[str, Any]:
    """template.yaml after the SAM transform (cached by the template's content)."""
    digest = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"transformed-{digest}.json"
    if not cached.exists():
        if not DEPLOY_PYTHON.exists():
            raise DeployVenvMissing(f"{DEPLOY_PYTHON} is missing: run `make deploy-venv`")
        result = subprocess.run(
            [str(DEPLOY_PYTHON), str(REPO / "tests/infra/sam_transform.py")],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"SAM transform failed:\n{result.stderr}")
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(result.stdout)
        partial.replace(cached)  # atomic: xdist workers may race to write it
    return dict(json.loads(cached.read_text()))


@dataclass(frozen=True)
class Statement:
    """One Allow or Deny statement of a function's role, intrinsics resolved."""

    policy: str  # the inline policy name, or the managed policy's
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]]
    managed: bool

    def label(self) -> str:
        return f"{self.policy}/{self.sid}" if self.sid else self.policy


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


class _StackResolver(Resolver):
    """Resolves what the environment names; anything else (not called by handlers) gets a placeholder."""

    def ref(self, name: str) -> str:
        try:
            return super().ref(name)
        except TemplateError:
            return f"unbound-{name}"

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return super().get_att(logical_id, attribute)
        except TemplateError:
            return f"unbound-{logical_id}-{attribute}"


def _bind(template: Mapping[str, Any], environment: Mapping[str, str]) -> _StackResolver:
    """A resolver for the stack whose function environment is `environment`."""
    region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION") or "us-east-1"
    account = "123456789012"
    for value in environment.values():
        match = re.match(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):", value) or re.search(
            r"/(\d{12})/[^/]+$", value
        )
        if match:
            account = match.group(1)
            break
    declared = template["Globals"]["Function"]["Environment"]["Variables"]
    overrides = {
        spec["Ref"]: environment[name]
        for name, spec in declared.items()
        if isinstance(spec, dict) and list(spec) == ["Ref"] and spec["Ref"] in template["Parameters"]
        if name in environment
    }
    resolver = _StackResolver(
        template=template,
        # The environment's values as given (a local API URL is not a deployable parameter value).
        parameters={**parameter_values(template), **overrides},
        pseudo={
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::StackName": "wanedit-local",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    resources = template["Resources"]
    for name, spec in declared.items():
        while isinstance(spec, dict) and "Fn::If" in spec:
            condition, when_true, when_false = spec["Fn::If"]
            spec = when_true if resolver.condition(condition) else when_false
        if not (isinstance(spec, dict) and list(spec) == ["Ref"] and spec["Ref"] in resources):
            continue
        if name not in environment:
            continue
        logical_id, value = spec["Ref"], environment[name]
        resolver.refs[logical_id] = value
        kind = resources[logical_id]["Type"]
        if kind == "AWS::SQS::Queue":
            queue = value.rstrip("/").rsplit("/", 1)[-1]
            resolver.attributes[(logical_id, "QueueName")] = queue
            resolver.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{region}:{account}:{queue}"
        elif kind == "AWS::SNS::Topic":
            resolver.attributes[(logical_id, "TopicName")] = value.rsplit(":", 1)[-1]
            resolver.attributes[(logical_id, "TopicArn")] = value
        elif kind == "AWS::DynamoDB::Table":
            resolver.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{region}:{account}:table/{value}"
        elif kind == "AWS::S3::Bucket":
            resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{value}"
    return resolver


def role_statements(environment: Mapping[str, str]) -> dict[str, list[Statement]]:
    """Function logical ID -> every statement of its execution role, for this stack."""
    transformed = transformed_template()
    resolver = _bind(load_template(TEMPLATE), environment)
    managed_by_arn = {
        f"arn:aws:iam::aws:policy/{path}{name}": name
        for name, path in (
            ("AWSLambdaBasicExecutionRole", "service-role/"),
            ("AWSXrayWriteOnlyAccess", ""),
            ("AWSLambdaSQSQueueExecutionRole", "service-role/"),
        )
    }
    roles: dict[str, list[Statement]] = {}
    for logical_id, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        role = transformed["Resources"][role_id]["Properties"]
        statements: list[Statement] = []
        for arn in role.get("ManagedPolicyArns", []):
            ours = arn.get("Ref") if isinstance(arn, dict) else None
            if isinstance(ours, str) and ours in transformed["Resources"]:  # a managed policy of this stack
                document = resolver.resolve(transformed["Resources"][ours]["Properties"]["PolicyDocument"])
                for index, raw in enumerate(_as_list(document["Statement"])):
                    statements.append(_statement(ours, raw, index, managed=False))
                continue
            name = managed_by_arn[resolver.resolve(arn)]
            for index, raw in enumerate(MANAGED_POLICY_STATEMENTS[name]):
                statements.append(_statement(name, raw, index, managed=True))
        for policy in role.get("Policies", []):
            document = resolver.resolve(policy["PolicyDocument"])
            for index, raw in enumerate(_as_list(document["Statement"])):
                statements.append(_statement(policy["PolicyName"], raw, index, managed=False))
        roles[logical_id] = statements
    return roles


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement(policy: str, raw: Mapping[str, Any], index: int, *, managed: bool) -> Statement:
    return Statement(
        policy=policy,
        sid=str(raw.get("Sid", "") or (f"#{index}" if managed else "")),
        effect=str(raw["Effect"]),
        actions=_as_tuple(raw["Action"]),
        resources=_as_tuple(raw.get("Resource", "*")),
        condition=raw.get("Condition", {}),
        managed=managed,
    )


# ------------------------------------------------------------------------------------ evaluation


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: `*` any run of characters, `?` exactly one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            values = [str(v) for v in _as_list(expected)]
            if key not in context:
                if if_exists:
                    continue
                return False
            actual = context[key]
            if base in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif base in ("StringLike", "ArnLike"):
                ok = any(glob_matches(v, actual) for v in values)
            elif base == "StringNotLike":
                ok = not any(glob_matches(v, actual) for v in values)
            elif base == "Bool":
                ok = actual.lower() in [v.lower() for v in values]
            else:
                raise ValueError(f"condition operator {operator} not supported by the evaluator")
            if not ok:
                return False
    return True


def statement_matches(statement: Statement, request: Authorization) -> bool:
    action = any(glob_matches(a, request.action, ignore_case=True) for a in statement.actions)
    resource = any(glob_matches(r, request.resource) for r in statement.resources)
    return action and resource and _condition_holds(statement.condition, request.context)


def evaluate(statements: list[Statement], request: Authorization) -> list[Statement] | None:
    """The Allow statements that grant `request`, or None when IAM would deny it."""
    matching = [s for s in statements if statement_matches(s, request)]
    if any(s.effect == "Deny" for s in matching):
        return None
    allowing = [s for s in matching if s.effect == "Allow"]
    return allowing or None


def granted_pairs(statement: Statement) -> list[tuple[str, str]]:
    """(action, resource) pairs a statement grants, to find the ones no call used."""
    return [(a, r) for a in statement.actions for r in statement.resources]
