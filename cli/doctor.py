"""`wanedit doctor [--stack NAME]`: is this stack able to edit a video right now? Each check says ok,
or what is wrong and the command that fixes it. Exit status 1 when a check fails (warnings do not).

Read-only: nothing is created or changed, at AWS or at the API. The API check is one authenticated
read, a list of the account's tasks over the last minute (one page of one): it answers 401
InvalidApiKey for a wrong key or a key of another region, costs one query of the read limit, and
unlike a query of a made-up task id it has a documented answer whatever the account holds.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cli.target import Target
from wanedit.adapters.lease import Lease
from wanedit.dashscope import DashScopeClient
from wanedit.dashscope.errors import DashScopeError

# The Lambda concurrency of an account the defaults are sized for (a new account's quota); the
# local stack has no account, so it is judged against that.
SMALL_ACCOUNT_CONCURRENCY = 10
# The template's parameters that cap each SQS event source, and the poller's one invocation.
EVENT_SOURCE_MAXIMA = ("SubmitMaxConcurrency", "CompleteMaxConcurrency", "LongClipMaxConcurrency")
POLLER_CONCURRENCY = 1
REQUIRED_LIFECYCLE_RULES = ("AbortIncompleteMultipartUploads", "ExpireWorkFiles")


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""


def _ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def _fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "fail", detail, fix)


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or str(error)
    return type(error).__name__


class Doctor:
    """The checks, against one stack; `now` is a clock (seconds since the epoch)."""

    def __init__(self, target: Target, *, now: Callable[[], float], defaults: Mapping[str, str]) -> None:
        self.target = target
        self.settings = target.settings
        self.now = now
        self.parameters = {**defaults, **target.parameters}

    def run(self) -> Iterator[Finding]:
        for check in (
            self.bucket_notifications,
            self.ingest_rule,
            self.api_key,
            self.poller,
            self.dead_letters,
            self.alarms,
            self.concurrency,
            self.lifecycle,
        ):
            try:
                yield check()
            except (ClientError, BotoCoreError) as error:
                name = check.__name__.replace("_", " ")
                yield _fail(
                    name, f"could not check: {_error_code(error)}", "check your credentials and region"
                )

    # -------------------------------------------------------------------------------------- checks

    def bucket_notifications(self) -> Finding:
        check = "bucket sends EventBridge notifications"
        bucket = self.settings.bucket_name
        config = self.target.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" in config:
            return _ok(check, f"s3://{bucket}")
        return _fail(
            check,
            f"s3://{bucket} does not send events to EventBridge: uploads start nothing",
            f"aws s3api put-bucket-notification-configuration --bucket {bucket} --notification-configuration "
            "'{\"EventBridgeConfiguration\": {}}'  (add your bucket's other notifications to that document "
            "too: the call replaces them)",
        )

    def ingest_rule(self) -> Finding:
        check = "the rule is enabled and targets the ingest queue"
        events = self.target.client("events")
        queue_arn = self._queue_arn(self.target.ingest_queue_url)
        rule = self._ingest_rule(events)
        if rule is None:
            return _fail(
                check,
                f"no rule on the default bus matches Object Created in s3://{self.settings.bucket_name}",
                "deploy the stack again (sam deploy): it creates IncomingObjectRule",
            )
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="default")["Targets"]
        if rule.get("State") != "ENABLED":
            return _fail(
                check,
                f"{rule['Name']} is {rule.get('State')}",
                f"aws events enable-rule --name {rule['Name']}",
            )
        if queue_arn not in [t["Arn"] for t in targets]:
            return _fail(
                check,
                f"{rule['Name']} does not deliver to {queue_arn}",
                "deploy the stack again (sam deploy) to restore the rule's target",
            )
        return _ok(check, f"{rule['Name']} -> {queue_arn.rsplit(':', 1)[-1]}")

    def api_key(self) -> Finding:
        check = "the secret holds an API key the API accepts"
        secret_id = self.settings.api_key_secret_id
        put = f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string 'sk-...'"
        try:
            value = (
                self.target.client("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString")
            )
        except ClientError as error:
            code = _error_code(error)
            if code == "ResourceNotFoundException":
                return _fail(check, "the secret has no value yet (or does not exist)", put)
            raise
        if not (value or "").strip():
            return _fail(check, "the secret's value is empty", put)
        api = DashScopeClient(lambda: self._api_key(value or ""), self.target.api_base_url)
        end = datetime.fromtimestamp(self.now(), UTC)
        try:
            api.list_tasks(start=end - timedelta(minutes=1), end=end, page_size=1)
        except DashScopeError as error:
            return _fail(
                check,
                f"the API at {self.target.api_base_url} refused the key: "
                f"{error.code or error.status} {error.message}",
                "put a valid key of the DashscopeRegion's Model Studio region: " + put,
            )
        finally:
            api.close()
        return _ok(check, f"{self.target.api_base_url} answered a task list with the key")

    def poller(self) -> Finding:
        check = "the poller ran within the last two schedule periods"
        period = schedule_seconds(self.parameters.get("PollSchedule", "rate(1 minute)"))
        lease = Lease(
            self.settings.job_table_name,
            resource=self.target.session.resource("dynamodb", endpoint_url=self.target.endpoint_url),
        )
        info = lease.holder_info()
        fix = (
            "look at the PollFunction's logs and the PollErrorsAlarm; check that its schedule (the Tick "
            "rule) is enabled"
        )
        if info is None:
            return _fail(check, "the poller never ran (no lease in the job table)", fix)
        age = self.now() - info.renewed_at
        if age > 2 * period:
            return _fail(check, f"the poller last ran {age:.0f} s ago (schedule: every {period:.0f} s)", fix)
        return _ok(check, f"last ran {max(0.0, age):.0f} s ago (every {period:.0f} s)")

    def dead_letters(self) -> Finding:
        check = "dead-letter queues are empty"
        sqs = self.target.client("sqs")
        queues = {
            "ingest": self.target.ingest_dlq_url,
            "complete": self.target.complete_dlq_url,
            "longclip": self.target.longclip_dlq_url,
        }
        held = {}
        for name, url in queues.items():
            if url:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                count = sum(int(v) for v in attributes.values())
                if count:
                    held[name] = count
        if held:
            listed = ", ".join(f"{name} {count}" for name, count in held.items())
            return _fail(
                check,
                f"messages wait in: {listed}",
                "see why with `wanedit redrive --dry-run`, fix the cause, then `wanedit redrive`",
            )
        return _ok(check, ", ".join(name for name, url in queues.items() if url))

    def alarms(self) -> Finding:
        check = "alarms are OK"
        prefix = f"{self.target.stack_name}-"
        found = self.target.client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
        if not found:
            return _ok(check, f"no alarm named {prefix}* (the local stack creates none)")
        firing = [a["AlarmName"] for a in found if a["StateValue"] == "ALARM"]
        if firing:
            return _fail(
                check,
                "in ALARM: " + ", ".join(firing),
                "read each alarm's description (aws cloudwatch describe-alarms --alarm-names ...): a DLQ "
                "alarm clears once the DLQ is redriven, PollErrorsAlarm once the poller stops failing",
            )
        return _ok(check, f"{len(found)} alarms, none in ALARM")

    def concurrency(self) -> Finding:
        check = "the account's Lambda concurrency holds the event sources and the poller"
        maxima = {name: int(self.parameters.get(name, "2")) for name in EVENT_SOURCE_MAXIMA}
        needed = sum(maxima.values()) + POLLER_CONCURRENCY
        unreserved, source = self._unreserved_concurrency()
        shares = " + ".join(f"{value} {name}" for name, value in maxima.items())
        if needed > unreserved:
            return _fail(
                check,
                f"{shares} + {POLLER_CONCURRENCY} poller = {needed}, more than the {unreserved} {source}",
                "lower those parameters (sam deploy --parameter-overrides SubmitMaxConcurrency=2 ...) or ask "
                "for more (Service Quotas: AWS Lambda, Concurrent executions)",
            )
        return _ok(check, f"needs {needed} of {unreserved} {source}")

    def lifecycle(self) -> Finding:
        check = "lifecycle rules are in place"
        bucket = self.settings.bucket_name
        if self.parameters.get("ExistingBucketName"):
            return Finding(
                check,
                "warn",
                f"s3://{bucket} is an existing bucket: the stack puts no lifecycle rule on it, so failed "
                f"long clips' files under {self.settings.work_prefix} and reports under "
                f"{self.settings.failed_prefix} never expire",
                f"add rules yourself (README, 'An existing bucket'): expire {self.settings.work_prefix} "
                "after 3 days and abort incomplete multipart uploads after 1",
            )
        try:
            rules = self.target.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as error:
            if _error_code(error) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        present = {rule.get("ID") for rule in rules if rule.get("Status") == "Enabled"}
        missing = [name for name in REQUIRED_LIFECYCLE_RULES if name not in present]
        if missing:
            return _fail(
                check,
                f"s3://{bucket} lacks {', '.join(missing)}",
                "deploy the stack again (sam deploy): the template sets the bucket's lifecycle rules",
            )
        return _ok(check, f"{len(rules)} rules on s3://{bucket}")

    # ------------------------------------------------------------------------------------- helpers

    def _queue_arn(self, url: str) -> str:
        attributes = self.target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _ingest_rule(self, events: Any) -> dict[str, Any] | None:
        rule_arn = self.target.outputs.get("IncomingObjectRuleArn")
        if rule_arn:
            try:
                return dict(events.describe_rule(Name=rule_arn.rsplit("/", 1)[-1], EventBusName="default"))
            except ClientError as error:
                if _error_code(error) != "ResourceNotFoundException":
                    raise
                return None
        bucket = self.settings.bucket_name
        for page in events.get_paginator("list_rules").paginate(EventBusName="default"):
            for rule in page["Rules"]:
                pattern = rule.get("EventPattern") or ""
                if "aws.s3" in pattern and f'"{bucket}"' in pattern:
                    return dict(rule)
        return None

    def _unreserved_concurrency(self) -> tuple[int, str]:
        if self.target.endpoint_url is not None:
            return SMALL_ACCOUNT_CONCURRENCY, "of a new account's quota (the local stack has no account)"
        limits = self.target.client("lambda").get_account_settings()["AccountLimit"]
        return int(limits["UnreservedConcurrentExecutions"]), "unreserved in this account and region"

    @staticmethod
    def _api_key(value: str) -> str:
        value = value.strip()
        if value.startswith("{"):  # a console key/value secret: {"api_key": "sk-..."}
            import json

            return str(json.loads(value).get("api_key", ""))
        return value


def schedule_seconds(expression: str) -> float:
    """The period of a `rate(...)` schedule; a `cron(...)` one is taken as every minute (its finest)."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return 60.0
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return float(int(match.group(1)) * unit)


def template_defaults() -> dict[str, str]:
    """The template's parameter defaults (what a local stack runs with, and a stack omitted)."""
    from local.cfn import load_template, parameter_values

    return parameter_values(load_template())


def dashboard_line(outputs: Mapping[str, str], *, local: bool) -> str:
    """Where the stack's CloudWatch dashboard is (its DashboardUrl output), or why there is none."""
    if local:
        return "dashboard: none for the local stack (CloudWatch dashboards exist in a deployed stack)"
    url = outputs.get("DashboardUrl")
    if not url:
        return "dashboard: none in this stack's outputs (deploy this version with sam deploy to get one)"
    return f"dashboard: {url}"


def run(target: Target, *, now: Callable[[], float], out: Any = None) -> int:
    """Print each finding; 1 when one failed, else 0."""
    out = out or sys.stdout
    print(f"wanedit doctor: {target.description}", file=out)
    failed = 0
    for finding in Doctor(target, now=now, defaults=template_defaults()).run():
        mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[finding.status]
        print(f"  {mark}  {finding.check}: {finding.detail}", file=out)
        if finding.fix:
            print(f"        fix: {finding.fix}", file=out)
        failed += finding.status == "fail"
    print(f"  {dashboard_line(target.outputs, local=target.endpoint_url is not None)}", file=out)
    print(f"{failed} check(s) failed" if failed else "all checks passed", file=out)
    return 1 if failed else 0
