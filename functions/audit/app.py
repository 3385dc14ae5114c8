"""Drift repair's worker: one queued message (due checks, an inventory slice, a page of users)
per invocation, stopping early and re-queueing the rest so no invocation nears its timeout."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.drift.work import MalformedWork
from quota_uploads.tracing import traced

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

# Left for what a message is doing when it decides to stop: one page of users, one check.
_MARGIN_MILLIS = 60_000


def _record_handler(record: SQSRecord, context: LambdaContext) -> None:
    try:
        progress = wiring.drift_worker().handle(
            record.body, lambda: context.get_remaining_time_in_millis() < _MARGIN_MILLIS
        )
    except MalformedWork as error:
        # Kept, not retried: the queue's DLQ holds it for someone to read.
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=1)
        logger.warning("malformed drift repair message", reason=str(error))
        raise
    metrics.add_metric(name="DriftBytes", unit=MetricUnit.Bytes, value=progress.bytes_corrected)
    metrics.add_metric(
        name="DriftKeysRepaired", unit=MetricUnit.Count, value=progress.keys_repaired
    )
    metrics.add_metric(name="DriftChecks", unit=MetricUnit.Count, value=progress.checked)
    metrics.add_metric(name="DriftCheckFailures", unit=MetricUnit.Count, value=progress.failures)
    if progress.bytes_corrected or progress.keys_repaired:
        logger.warning("ledger drift repaired", **vars(progress))


@traced
@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=lambda record: _record_handler(record, context),
        processor=processor,
        context=context,
    )
