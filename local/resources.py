"""The local stack's AWS resources, created on a moto server from template.yaml itself.

Nothing here restates the template: the bucket's notification and versioning settings, the
queues' visibility timeouts and redrive policies, the table's keys, GSIs and TTL, the rule's
event pattern and the functions' environment are all read from ``template.yaml`` and its
parameter defaults, so the local stack and the tests cannot drift from what deploys.

What is *not* created locally: functions, the layers, log groups, alarms and the schedule (the
local event pump plays Lambda and the scheduler), and bucket policy and IAM (moto does not enforce
them; tests/iam checks every call against the roles instead). The bucket's lifecycle rules are
stored but never applied (nothing under work/ or failed/ expires locally).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local.cfn import TEMPLATE_PATH, Resolver, TemplateError, load_template, parameter_values, references

DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _report_eventbridge_notifications() -> None:
    """moto (5.2.5) stores a bucket's EventBridgeConfiguration but leaves it out of
    GetBucketNotificationConfiguration, where S3 returns it: tools reading it back (`wanedit
    doctor`) would see a bucket that sends nothing. Add it to moto's answer, as S3 gives it."""
    from moto.s3.responses import S3Response

    answer = S3Response.get_bucket_notification
    if getattr(answer, "reports_eventbridge", False):
        return

    def get_bucket_notification(self: Any) -> Any:
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if configuration is None or configuration.event_bridge is None:
            return answer(self)
        status, headers, body = answer(self)
        text = body.decode() if isinstance(body, bytes) else str(body)
        closing = "</NotificationConfiguration>"
        if "<EventBridgeConfiguration" not in text and closing in text:
            text = text.replace(closing, f"<EventBridgeConfiguration></EventBridgeConfiguration>{closing}")
        elif closing not in text:  # moto's empty answer for a bucket with nothing else configured
            text = (
                '<?xml version="1.0" encoding="UTF-8"?><NotificationConfiguration '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><EventBridgeConfiguration>'
                f"</EventBridgeConfiguration>{closing}"
            )
        return status, {**headers, "content-length": str(len(text.encode()))}, text

    get_bucket_notification.reports_eventbridge = True  # type: ignore[attr-defined]
    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


_report_eventbridge_notifications()

# Resource types the pipeline needs at run time, and the order-independent way to make each.
_CREATED_TYPES = {
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::DynamoDB::Table",
    "AWS::SNS::Topic",
    "AWS::SecretsManager::Secret",
    "AWS::Events::Rule",
}


@dataclass(frozen=True)
class LocalResources:
    """Where the local stack's resources are; enough for handlers, the pump, the CLI and tests."""

    endpoint_url: str
    region: str
    bucket: str
    table: str
    ingest_queue_url: str
    ingest_dlq_url: str
    complete_queue_url: str
    complete_dlq_url: str
    longclip_queue_url: str
    longclip_dlq_url: str
    topic_arn: str
    secret_id: str
    event_bus: str
    ingest_max_receive: int
    complete_max_receive: int
    longclip_max_receive: int
    ingest_visibility_timeout: int
    complete_visibility_timeout: int
    longclip_visibility_timeout: int
    # Globals.Function.Environment.Variables of the template, every reference resolved.
    template_environment: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def function_environment(
        self, *, api_base_url: str, max_concurrent_tasks: int | None = None
    ) -> dict[str, str]:
        """The environment each function gets: the template's Globals env, pointed at this stack.

        ``max_concurrent_tasks`` None keeps the template's MaxConcurrentTasks.
        """
        env = dict(self.template_environment)
        env["DASHSCOPE_BASE_URL"] = api_base_url
        if max_concurrent_tasks is not None:
            env["MAX_CONCURRENT_TASKS"] = str(max_concurrent_tasks)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            }
        )
        return env

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for .wanedit/local.json)."""
        data = asdict(self)
        data["template_environment"] = dict(self.template_environment)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalResources:
        return cls(**data)


def create_local_resources(
    endpoint_url: str,
    *,
    region: str = "us-east-1",
    api_key: str,
    template_path: Path = TEMPLATE_PATH,
    stack_name: str = "wanedit-local",
    parameters: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create (or find again: it is idempotent) the template's run-time resources on ``endpoint_url``.

    ``parameters`` overrides template parameter defaults, as ``--parameter-overrides`` would.
    The created secret holds ``api_key``.
    """
    session = boto3.Session(region_name=region, **DUMMY_CREDENTIALS)

    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=endpoint_url)
        return clients[service]

    template = load_template(template_path)
    account = client("sts").get_caller_identity()["Account"]
    resolver = Resolver(
        template=template,
        parameters=parameter_values(template, parameters),
        pseudo={
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    builder = _Builder(
        client, resolver, region=region, account=account, stack_name=stack_name, api_key=api_key
    )
    for logical_id in _creation_order(template, resolver):
        builder.create(logical_id)

    env = {
        k: str(v)
        for k, v in resolver.resolve(template["Globals"]["Function"]["Environment"]["Variables"]).items()
    }
    if not resolver.resource_enabled("MediaBucket"):
        builder.ensure_existing_bucket(env["BUCKET_NAME"])

    resources = template["Resources"]

    def redrive(logical_id: str) -> int:
        return int(resources[logical_id]["Properties"]["RedrivePolicy"]["maxReceiveCount"])

    def visibility(logical_id: str) -> int:
        return int(resources[logical_id]["Properties"].get("VisibilityTimeout", 30))

    return LocalResources(
        endpoint_url=endpoint_url,
        region=region,
        bucket=env["BUCKET_NAME"],
        table=env["JOB_TABLE_NAME"],
        ingest_queue_url=resolver.ref("IngestQueue"),
        ingest_dlq_url=resolver.ref("IngestDLQ"),
        complete_queue_url=env["COMPLETE_QUEUE_URL"],
        complete_dlq_url=resolver.ref("CompleteDLQ"),
        longclip_queue_url=env["LONG_CLIP_QUEUE_URL"],
        longclip_dlq_url=resolver.ref("LongClipDLQ"),
        topic_arn=env["TOPIC_ARN"],
        secret_id=env["API_KEY_SECRET_ID"],
        event_bus=env["EVENT_BUS_NAME"],
        ingest_max_receive=redrive("IngestQueue"),
        complete_max_receive=redrive("CompleteQueue"),
        longclip_max_receive=redrive("LongClipQueue"),
        ingest_visibility_timeout=visibility("IngestQueue"),
        complete_visibility_timeout=visibility("CompleteQueue"),
        longclip_visibility_timeout=visibility("LongClipQueue"),
        template_environment=env,
    )


def _creation_order(template: Mapping[str, Any], resolver: Resolver) -> list[str]:
    """Logical IDs to create, each after the resources it refers to."""
    resources: Mapping[str, Any] = template["Resources"]
    wanted = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in _CREATED_TYPES and resolver.resource_enabled(logical_id)
    ]
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise TemplateError(f"circular reference through {logical_id}")
        visiting.add(logical_id)
        for dependency in sorted(references(resources[logical_id].get("Properties", {}))):
            if dependency in wanted:
                visit(dependency)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in wanted:
        visit(logical_id)
    return order


def _physical_name(stack_name: str, logical_id: str) -> str:
    """Deterministic names in CloudFormation's "<stack>-<LogicalId>" style."""
    return f"{stack_name}-{logical_id}"


class _Builder:
    """Creates one resource per call from its template definition; records its Ref and attributes."""

    def __init__(
        self,
        client: Callable[[str], Any],
        resolver: Resolver,
        *,
        region: str,
        account: str,
        stack_name: str,
        api_key: str,
    ) -> None:
        self.client = client
        self.resolver = resolver
        self.region = region
        self.account = account
        self.stack_name = stack_name
        self.api_key = api_key

    def create(self, logical_id: str) -> None:
        resource = self.resolver.template["Resources"][logical_id]
        properties = self.resolver.resolve(resource.get("Properties", {}))
        creator = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Events::Rule": self._rule,
        }[resource["Type"]]
        creator(logical_id, properties)

    # -- S3
    def _bucket(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        name = properties.get("BucketName") or re.sub(
            r"[^a-z0-9-]", "-", _physical_name(self.stack_name, logical_id).lower()
        )
        self._make_bucket(name, properties)
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        self.resolver.attributes[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"

    def ensure_existing_bucket(self, name: str) -> None:
        """ExistingBucketName given: make that bucket as its owner would have (EventBridge on)."""
        self._make_bucket(
            name,
            {
                "VersioningConfiguration": {"Status": "Enabled"},
                "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            },
        )

    def _make_bucket(self, name: str, properties: Mapping[str, Any]) -> None:
        s3 = self.client("s3")
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            s3.create_bucket(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if "VersioningConfiguration" in properties:
            s3.put_bucket_versioning(
                Bucket=name,
                VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]},
            )
        eventbridge = properties.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {})
        if _truthy(eventbridge.get("EventBridgeEnabled")):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        if "PublicAccessBlockConfiguration" in properties:
            block = {k: _truthy(v) for k, v in properties["PublicAccessBlockConfiguration"].items()}
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        if "BucketEncryption" in properties:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "OwnershipControls" in properties:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=properties["OwnershipControls"])
        if "LifecycleConfiguration" in properties:
            rules = [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})

    # -- SQS
    def _queue(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        sqs = self.client("sqs")
        name = properties.get("QueueName") or _physical_name(self.stack_name, logical_id)
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "MaximumMessageSize",
            "FifoQueue",
            "ContentBasedDeduplication",
            "SqsManagedSseEnabled",
        ):
            if key in properties:
                value = properties[key]
                attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if "RedrivePolicy" in properties:
            policy = properties["RedrivePolicy"]
            attributes["RedrivePolicy"] = policy if isinstance(policy, str) else json.dumps(policy)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        # create_queue returns an existing queue as is: make a re-run converge on the template.
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        self.resolver.refs[logical_id] = url
        self.resolver.attributes[(logical_id, "QueueUrl")] = url
        self.resolver.attributes[(logical_id, "QueueName")] = name
        self.resolver.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{self.region}:{self.account}:{name}"

    def _queue_policy(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        sqs = self.client("sqs")
        for url in properties["Queues"]:
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
            )
        self.resolver.refs[logical_id] = _physical_name(self.stack_name, logical_id)

    # -- DynamoDB
    def _table(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        dynamodb = self.client("dynamodb")
        name = properties.get("TableName") or _physical_name(self.stack_name, logical_id)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if "GlobalSecondaryIndexes" in properties:
            kwargs["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        if "LocalSecondaryIndexes" in properties:
            kwargs["LocalSecondaryIndexes"] = properties["LocalSecondaryIndexes"]
        if "ProvisionedThroughput" in properties:
            kwargs["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
        if "StreamSpecification" in properties:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        sse = properties.get("SSESpecification")
        if sse is not None:
            kwargs["SSESpecification"] = {"Enabled": _truthy(sse.get("SSEEnabled"))}
        try:
            dynamodb.create_table(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl is not None and _truthy(ttl.get("Enabled")):
            current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
        pitr = properties.get("PointInTimeRecoverySpecification")
        if pitr is not None and _truthy(pitr.get("PointInTimeRecoveryEnabled")):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
        )

    # -- SNS
    def _topic(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        name = properties.get("TopicName") or _physical_name(self.stack_name, logical_id)
        attributes = {k: str(properties[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in properties}
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attributes[(logical_id, "TopicArn")] = arn
        self.resolver.attributes[(logical_id, "TopicName")] = name

    # -- Secrets Manager
    def _secret(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        secrets = self.client("secretsmanager")
        name = properties.get("Name") or _physical_name(self.stack_name, logical_id)
        # Deployed, the secret starts empty and the deployer puts the key; locally we are the deployer.
        try:
            arn = secrets.create_secret(
                Name=name, Description=str(properties.get("Description", "")), SecretString=self.api_key
            )["ARN"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceExistsException":
                raise
            arn = secrets.put_secret_value(SecretId=name, SecretString=self.api_key)["ARN"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attributes[(logical_id, "Id")] = arn

    # -- EventBridge
    def _rule(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        if "EventPattern" not in properties:
            return  # schedules: the local pump is the scheduler
        events = self.client("events")
        name = properties.get("Name") or _physical_name(self.stack_name, logical_id)
        bus = properties.get("EventBusName", "default")
        pattern = properties["EventPattern"]
        arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
            State=properties.get("State", "ENABLED"),
            Description=str(properties.get("Description", "")),
        )["RuleArn"]
        targets = [
            {
                k: v
                for k, v in target.items()
                if k in ("Id", "Arn", "Input", "InputPath", "RetryPolicy", "DeadLetterConfig")
            }
            for target in properties.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = arn


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape (stored, so tools can read it back;
    moto never applies it: nothing expires locally)."""
    prefix = rule.get("Prefix", "")
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"And": {"Prefix": prefix, "Tags": tags}} if tags else {"Prefix": prefix},
    }
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "Transitions" in rule:
        converted["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
            for t in rule["Transitions"]
        ]
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
