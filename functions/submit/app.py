"""SubmitFunction: S3 "Object Created" events (EventBridge -> SQS) -> pair, validate, submit."""

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanedit import observability
from wanedit.container import services
from wanedit.metrics import INTAKE
from wanedit.usecases.intake import ObjectEvent, handle_object_created

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    detail = S3EventBridgeNotificationEvent(json.loads(record.body)).detail
    obj = detail.object
    logger.append_keys(key=obj.key)
    svc = services()
    # The key as sent (URL-encoded by S3); the use case resolves it against the bucket.
    outcome = handle_object_created(
        svc, ObjectEvent(bucket=detail.bucket.name, key=obj["key"], version_id=obj.get("version-id"))
    )
    svc.metrics.emit(INTAKE, dimension=outcome)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
