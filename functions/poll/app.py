"""PollFunction: on a schedule, follow active jobs to their end and submit queued jobs as slots free."""

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanedit import observability
from wanedit.container import services
from wanedit.usecases.poll import deadline_from_remaining, run_poll

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    svc = services()
    report = run_poll(
        svc,
        deadline=deadline_from_remaining(svc, context.get_remaining_time_in_millis()),
        holder=context.aws_request_id,
    )
    logger.info("poll finished", extra=asdict(report))
    return asdict(report)
