"""CompleteFunction: a finished task (SQS) -> the edited MP4 and its manifest in the bucket, announced."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanedit import observability
from wanedit.container import services
from wanedit.messages import CompletionMessage
from wanedit.metrics import PERSIST_RETRIES
from wanedit.usecases.complete import PersistRetry, persist_result

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    job_id = CompletionMessage.model_validate_json(record.body).job_id
    logger.set_correlation_id(job_id)
    svc = services()
    try:
        persist_result(svc, job_id)
    except PersistRetry as retry:
        # Transient: failing the record makes SQS deliver it again after the visibility timeout.
        logger.info("persist to be retried", extra={"reason": str(retry)})
        svc.metrics.emit(PERSIST_RETRIES)
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
