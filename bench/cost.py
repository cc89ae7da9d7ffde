"""Figure 8: AWS cost per 1,000 jobs from the requests and durations counted in a pipeline run.

Public list prices, us-east-1, on-demand, no free tier (checked against the AWS pricing pages for
2025; change them here). The API's own cost is `usage.duration` (the reference's billing unit:
input + output video seconds) times a price per second you choose (BENCH_API_PRICE_PER_SECOND).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.common import Row
from bench.pipeline import PipelineRun

PRICES = {
    "lambda_gb_second_arm64": 0.0000133334,  # Lambda, arm64, per GB-second
    "lambda_request": 0.20 / 1e6,  # Lambda, per request
    "dynamodb_wru": 0.625 / 1e6,  # DynamoDB on-demand, per write request unit
    "dynamodb_rru": 0.125 / 1e6,  # DynamoDB on-demand, per read request unit
    "sqs_request": 0.40 / 1e6,  # SQS standard, per request (64 KB chunk)
    "s3_put_class": 0.005 / 1000,  # S3 Standard PUT, COPY, POST, LIST (multipart calls included)
    "s3_get_class": 0.0004 / 1000,  # S3 Standard GET, HEAD and all other requests
    "eventbridge_custom_event": 1.00 / 1e6,  # PutEvents, custom events (S3's own events: free)
    "sns_publish": 0.50 / 1e6,  # SNS standard publishes (deliveries to e-mail not counted)
    "s3_egress_gb": 0.09,  # data transfer out to the internet (the API fetching the input clip)
}
LAMBDA_MEMORY_GB = 512 / 1024  # template.yaml MemorySize
API_PRICE_PER_SECOND = float(os.environ.get("BENCH_API_PRICE_PER_SECOND", "0.10"))
S3_PUT_CLASS = {
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListObjectsV2",
    "CopyObject",
    "PutObjectTagging",  # a PUT request (Tier 1), like every write; GetObjectTagging is a GET
    "DeleteObjectTagging",
}
GOAL_SHARE = 0.01  # AWS at most 1% of what the API itself costs


@dataclass
class CostBreakdown:
    lines: dict[str, float]  # dollars for the run
    quantities: dict[str, float]
    jobs: int
    api_dollars: float

    @property
    def aws_dollars(self) -> float:
        return sum(self.lines.values())

    def per_1000(self, dollars: float) -> float:
        return dollars / max(1, self.jobs) * 1000


def cost_of(run: PipelineRun) -> CostBreakdown:
    c = run.calls
    p = PRICES
    gb_s = sum(run.invocations.billed_seconds.values()) * LAMBDA_MEMORY_GB
    lambda_requests = sum(run.invocations.count.values())
    wru = sum(c.wru.values())
    rru = sum(c.rru.values())
    sqs = c.by_service()["sqs"] + 2 * run.n  # + EventBridge's delivery of each upload event to SQS
    s3_ops = c.operations("s3")
    s3_put = sum(n for op, n in s3_ops.items() if op in S3_PUT_CLASS)
    s3_get = sum(n for op, n in s3_ops.items() if op not in S3_PUT_CLASS)
    s3_get += run.persisted  # the API's presigned GET of each input clip
    events = c.operations("eventbridge")["PutEvents"]
    sns = c.operations("sns")["Publish"]
    egress_gb = run.persisted * run.clip_bytes / 1e9
    quantities = {
        "lambda_gb_seconds": gb_s,
        "lambda_requests": lambda_requests,
        "dynamodb_wru": wru,
        "dynamodb_rru": rru,
        "sqs_requests": sqs,
        "s3_put_class": s3_put,
        "s3_get_class": s3_get,
        "eventbridge_events": events,
        "sns_publishes": sns,
        "s3_egress_gb": egress_gb,
    }
    lines = {
        "Lambda duration": gb_s * p["lambda_gb_second_arm64"],
        "Lambda requests": lambda_requests * p["lambda_request"],
        "DynamoDB writes": wru * p["dynamodb_wru"],
        "DynamoDB reads": rru * p["dynamodb_rru"],
        "SQS": sqs * p["sqs_request"],
        "S3 PUT-class": s3_put * p["s3_put_class"],
        "S3 GET-class": s3_get * p["s3_get_class"],
        "EventBridge": events * p["eventbridge_custom_event"],
        "SNS": sns * p["sns_publish"],
        "S3 egress (input to API)": egress_gb * p["s3_egress_gb"],
    }
    return CostBreakdown(lines, quantities, run.persisted, run.usage_seconds * API_PRICE_PER_SECOND)


def cost_row(run: PipelineRun) -> Row:
    cost = cost_of(run)
    share = cost.aws_dollars / cost.api_dollars if cost.api_dollars else float("inf")
    return Row(
        figure=f"8 AWS cost / 1000 jobs (N={run.n})",
        goal=f"<= {GOAL_SHARE:.0%} of the API's own cost",
        measured=(
            f"AWS ${cost.per_1000(cost.aws_dollars):.4f} vs API ${cost.per_1000(cost.api_dollars):.2f}"
            f" (at ${API_PRICE_PER_SECOND}/s of usage.duration): {share:.3%}"
        ),
        passed=share <= GOAL_SHARE,
        note="largest: "
        + ", ".join(
            f"{k} ${cost.per_1000(v):.4f}" for k, v in sorted(cost.lines.items(), key=lambda kv: -kv[1])[:3]
        ),
        data={
            "aws_per_1000": cost.per_1000(cost.aws_dollars),
            "api_per_1000": cost.per_1000(cost.api_dollars),
            "lines_per_1000": {k: cost.per_1000(v) for k, v in cost.lines.items()},
            "quantities_per_1000": {k: v / max(1, cost.jobs) * 1000 for k, v in cost.quantities.items()},
        },
    )
