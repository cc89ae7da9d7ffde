"""LongClipFunction (the one with PyAV): split a long clip into segment tasks, stitch their edits, or
draw a saved edit's before/after preview — one SQS message each."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanedit import observability
from wanedit.container import services
from wanedit.messages import LongClipMessage
from wanedit.metrics import LONG_CLIP_STEPS
from wanedit.usecases.longclip import LongClipRetry, PreviewRetry, run_action

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    message = LongClipMessage.model_validate_json(record.body)
    logger.set_correlation_id(message.job_id)
    logger.append_keys(action=message.action)
    svc = services()
    try:
        state = run_action(svc, message, attempt=int(record.attributes.approximate_receive_count))
    except (LongClipRetry, PreviewRetry) as retry:
        # Transient: failing the record makes SQS deliver it again after the visibility timeout.
        logger.info("long-clip step to be retried", extra={"reason": str(retry)})
        svc.metrics.emit(LONG_CLIP_STEPS, dimension=f"{message.action}:retry")
        raise
    if state is not None:
        svc.metrics.emit(LONG_CLIP_STEPS, dimension=f"{message.action}:{state.value}")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
