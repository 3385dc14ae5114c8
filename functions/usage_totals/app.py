"""Adds each stream batch of usage item changes into the store-wide totals, exactly once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.keys import USAGE_SK
from quota_uploads.ledger.totals import StoreTotals, change_of
from quota_uploads.tracing import traced

logger = Logger()
metrics = Metrics()


@traced
@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=DynamoDBStreamEvent)
def lambda_handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    records = list(event.records)
    changes: list[StoreTotals] = []
    skipped = 0
    for record in records:
        stream = record.raw_event.get("dynamodb", {})
        if stream.get("Keys", {}).get("sk", {}).get("S") != USAGE_SK:
            continue
        try:
            changes.append(change_of(stream.get("OldImage"), stream.get("NewImage")))
        except (ValueError, KeyError, TypeError):
            # A malformed item must not hold up the stream; the audit corrects its counters.
            skipped += 1
            logger.warning("usage item change not counted", event_id=record.event_id)
    if skipped:
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=skipped)
    if not records:
        return {"added": False}
    # The same batch comes again after a failure: its first and last record name it.
    batch_id = f"{records[0].event_id}-{records[-1].event_id}"
    added = wiring.background_ledger().totals.add(batch_id, changes)
    return {"added": added, "changes": len(changes)}
