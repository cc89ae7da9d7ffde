"""What AWS authorizes for one SDK call: the IAM action(s), the resource ARN and the request context.

Each rule follows the service authorization reference ("Actions, resources, and condition keys"):
a VersionId turns s3:GetObject into s3:GetObjectVersion (and the tagging calls into their Version
forms), multipart parts are s3:PutObject, a HEAD or GET of a missing key also needs s3:ListBucket
(with s3:prefix = that key) to answer 404 rather than 403, a Query on an index is authorized on the
index ARN, and a presigned URL is authorized when it is used, with its signer's permissions.
An operation without a rule here raises `Unmapped`: the recorder fails the run rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Unmapped(Exception):
    """An SDK operation this module has no IAM rule for."""


@dataclass(frozen=True)
class Call:
    """One SDK call as the recorder saw it."""

    service: str  # botocore's service name: s3, dynamodb, sqs, sns, events, secretsmanager
    operation: str  # the API operation: GetObject, Query...
    params: Mapping[str, Any]
    region: str
    account: str
    status: int | None = None  # HTTP status of the answer (None: presigned, not sent by the function)
    error_code: str | None = None


@dataclass(frozen=True)
class Authorization:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return (self.action, self.resource, tuple(sorted(self.context.items())))


_MISSING_KEY = ("NoSuchKey", "NoSuchVersion", "NotFound", "404")


def authorizations(call: Call) -> list[Authorization]:
    rule = _RULES.get((call.service, call.operation))
    if rule is None:
        raise Unmapped(f"{call.service}:{call.operation}")
    return rule(call)


# ---------------------------------------------------------------------------------------- S3


def _object(call: Call, key: str | None = None) -> str:
    return f"arn:aws:s3:::{call.params['Bucket']}/{call.params['Key'] if key is None else key}"


def _bucket(call: Call) -> str:
    return f"arn:aws:s3:::{call.params['Bucket']}"


def _versioned(call: Call, plain: str, versioned: str) -> str:
    return versioned if call.params.get("VersionId") else plain


def _read(call: Call) -> list[Authorization]:
    found = [Authorization(_versioned(call, "s3:GetObject", "s3:GetObjectVersion"), _object(call))]
    if call.error_code in _MISSING_KEY or call.status == 404:
        # S3 answers 404 for a missing key only to a caller that may list it.
        found.append(Authorization("s3:ListBucket", _bucket(call), {"s3:prefix": call.params["Key"]}))
    return found


def _tagging(plain: str, versioned: str) -> Any:
    def rule(call: Call) -> list[Authorization]:
        found = [Authorization(_versioned(call, plain, versioned), _object(call))]
        if call.error_code in _MISSING_KEY or call.status == 404:  # as for a read of a missing key
            found.append(Authorization("s3:ListBucket", _bucket(call), {"s3:prefix": call.params["Key"]}))
        return found

    return rule


def _write(call: Call) -> list[Authorization]:
    found = [Authorization("s3:PutObject", _object(call))]
    if call.params.get("Tagging"):
        found.append(Authorization("s3:PutObjectTagging", _object(call)))
    return found


def _list(call: Call) -> list[Authorization]:
    context = {"s3:prefix": call.params["Prefix"]} if "Prefix" in call.params else {}
    return [Authorization("s3:ListBucket", _bucket(call), context)]


def _delete_objects(call: Call) -> list[Authorization]:
    return [
        Authorization(
            "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject",
            _object(call, item["Key"]),
        )
        for item in call.params["Delete"]["Objects"]
    ]


def _copy(call: Call) -> list[Authorization]:
    source = call.params["CopySource"]
    if isinstance(source, str):
        bucket, _, rest = source.lstrip("/").partition("/")
        key, _, query = rest.partition("?versionId=")
        source = {"Bucket": bucket, "Key": key, **({"VersionId": query} if query else {})}
    read = Call("s3", "GetObject", source, call.region, call.account)
    return [*_read(read), *_write(call)]


# ---------------------------------------------------------------------------------- the others


def _table(call: Call, name: str | None = None) -> str:
    return f"arn:aws:dynamodb:{call.region}:{call.account}:table/{name or call.params['TableName']}"


def _dynamodb(action: str) -> Any:
    def rule(call: Call) -> list[Authorization]:
        resource = _table(call)
        if call.params.get("IndexName"):
            resource += f"/index/{call.params['IndexName']}"
        return [Authorization(action, resource)]

    return rule


def _dynamodb_batch(action: str) -> Any:
    def rule(call: Call) -> list[Authorization]:
        return [Authorization(action, _table(call, name)) for name in call.params["RequestItems"]]

    return rule


_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def _transact(call: Call) -> list[Authorization]:
    """IAM has no action for a transaction: each item is authorized as the write it makes."""
    return [
        Authorization(_TRANSACT_ACTIONS[kind], _table(call, operation["TableName"]))
        for item in call.params["TransactItems"]
        for kind, operation in item.items()
    ]


def _queue(call: Call) -> str:
    name = str(call.params.get("QueueUrl") or call.params["QueueName"]).rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{call.region}:{call.account}:{name}"


def _sqs(action: str) -> Any:
    return lambda call: [Authorization(action, _queue(call))]


def _put_events(call: Call) -> list[Authorization]:
    buses = {entry.get("EventBusName") or "default" for entry in call.params["Entries"]}
    return [
        Authorization(
            "events:PutEvents",
            bus if bus.startswith("arn:") else f"arn:aws:events:{call.region}:{call.account}:event-bus/{bus}",
        )
        for bus in sorted(buses)
    ]


def _secret(call: Call) -> list[Authorization]:
    secret = str(call.params["SecretId"])
    if not secret.startswith("arn:"):  # a name: AWS authorizes the full ARN, suffix unknown here
        secret = f"arn:aws:secretsmanager:{call.region}:{call.account}:secret:{secret}-??????"
    return [Authorization("secretsmanager:GetSecretValue", secret)]


_RULES: dict[tuple[str, str], Any] = {
    ("s3", "GetObject"): _read,
    ("s3", "HeadObject"): _read,
    ("s3", "PutObject"): _write,
    ("s3", "CreateMultipartUpload"): _write,
    ("s3", "UploadPart"): lambda call: [Authorization("s3:PutObject", _object(call))],
    ("s3", "CompleteMultipartUpload"): lambda call: [Authorization("s3:PutObject", _object(call))],
    ("s3", "AbortMultipartUpload"): lambda call: [Authorization("s3:AbortMultipartUpload", _object(call))],
    ("s3", "ListParts"): lambda call: [Authorization("s3:ListMultipartUploadParts", _object(call))],
    ("s3", "CopyObject"): _copy,
    ("s3", "DeleteObject"): lambda call: [
        Authorization(_versioned(call, "s3:DeleteObject", "s3:DeleteObjectVersion"), _object(call))
    ],
    ("s3", "DeleteObjects"): _delete_objects,
    ("s3", "GetObjectTagging"): _tagging("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("s3", "PutObjectTagging"): _tagging("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    ("s3", "ListObjectsV2"): _list,
    ("s3", "ListObjects"): _list,
    ("s3", "ListObjectVersions"): lambda call: [Authorization("s3:ListBucketVersions", _bucket(call))],
    ("dynamodb", "GetItem"): _dynamodb("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _dynamodb("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _dynamodb("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): _dynamodb("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): _dynamodb("dynamodb:Query"),
    ("dynamodb", "Scan"): _dynamodb("dynamodb:Scan"),
    ("dynamodb", "DescribeTable"): _dynamodb("dynamodb:DescribeTable"),
    ("dynamodb", "BatchGetItem"): _dynamodb_batch("dynamodb:BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch("dynamodb:BatchWriteItem"),
    ("dynamodb", "TransactWriteItems"): _transact,
    ("sqs", "SendMessage"): _sqs("sqs:SendMessage"),
    ("sqs", "SendMessageBatch"): _sqs("sqs:SendMessage"),
    ("sqs", "ReceiveMessage"): _sqs("sqs:ReceiveMessage"),
    ("sqs", "DeleteMessage"): _sqs("sqs:DeleteMessage"),
    ("sqs", "ChangeMessageVisibility"): _sqs("sqs:ChangeMessageVisibility"),
    ("sqs", "GetQueueAttributes"): _sqs("sqs:GetQueueAttributes"),
    ("sqs", "GetQueueUrl"): _sqs("sqs:GetQueueUrl"),
    ("sns", "Publish"): lambda call: [Authorization("sns:Publish", str(call.params["TopicArn"]))],
    ("events", "PutEvents"): _put_events,
    ("secretsmanager", "GetSecretValue"): _secret,
}
