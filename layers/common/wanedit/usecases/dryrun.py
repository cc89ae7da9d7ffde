"""A dry run (sidecar ``"dry_run": true``): everything validated, nothing created, the cost written down.

edited/<path>/<stem>.estimate.json says what would be sent (the request without its presigned
URLs: inputs are named by key and version), the billed seconds and the price, and how the budgets
stand, so a team can try a sidecar, or a folder's defaults, without spending anything.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Job
from wanedit.domain.limits import MODEL
from wanedit.reports import iso
from wanedit.usecases.budget import budget_view

logger = Logger(child=True)


def write_estimate(svc: Services, job: Job) -> None:
    """Write the job's estimate instead of creating it (no task, no job record)."""
    now = svc.clock.now()
    prices = svc.settings.prices
    estimate = job.estimate
    document: dict[str, Any] = {
        "status": "DRY_RUN",
        "summary": 'Validated; nothing was sent to the API. Remove "dry_run" to make the edit.',
        "job_id": job.job_id,
        "would_send": _request(job),
        "estimate": {
            "billed_seconds": estimate.seconds if estimate else None,
            "amount": estimate.amount if estimate else None,
            "unit": prices.unit,
            "tier": estimate.tier if estimate else None,
            "price_per_second": prices.per_second(estimate.tier) if estimate else None,
            "segments": "one task per 2-10 s segment" if job.long_clip else None,
        },
        "budgets": budget_view(svc, now),
        "origins": job.request.public_origins(),
        "source": {
            "video": job.video.model_dump(exclude_none=True),
            "sidecar": job.sidecar.model_dump(exclude_none=True),
        },
        "reported_at": iso(now),
    }
    svc.objects.put_json(svc.layout.estimate_key(job.stem), document)
    logger.info("dry run: estimate written", extra={"job_id": job.job_id, "estimate": document["estimate"]})


def _request(job: Job) -> dict[str, Any]:
    media = [{"type": "video", "key": job.video.key, "version_id": job.video.version_id}]
    media += [{"type": "reference_image", "image": name} for name in job.request.public_images]
    body: dict[str, Any] = {"model": MODEL, "input": {"prompt": job.prompt, "media": media}}
    if job.request.negative_prompt:
        body["input"]["negative_prompt"] = job.request.negative_prompt
    if job.request.parameters.as_dict():
        body["parameters"] = job.request.parameters.as_dict()
    return body
