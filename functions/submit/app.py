"""SubmitFunction: S3 "Object Created" events (EventBridge -> SQS) -> pair, validate, submit."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanedit.container import services
from wanedit.messages import IngestRecord
from wanedit.metrics import INTAKE
from wanedit.usecases.intake import ObjectEvent, handle_object_created

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, model=IngestRecord)


@tracer.capture_method
def record_handler(record: IngestRecord) -> None:
    detail = record.body.detail
    logger.append_keys(key=detail.object.key)
    # The key as sent (URL-encoded by S3); the use case resolves it against the bucket.
    svc = services()
    outcome = handle_object_created(
        svc,
        ObjectEvent(bucket=detail.bucket.name, key=detail.object.key, version_id=detail.object.version_id),
    )
    svc.metrics.emit(INTAKE, dimension=outcome)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
