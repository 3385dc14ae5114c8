"""Hourly: queues the drift checks now due, and reports the store-wide totals.

Both take the same few requests however many users there are: the checks themselves run in the
audit function, one bounded message at a time, and the totals are kept from the table's stream.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.tracing import traced

logger = Logger()
metrics = Metrics()


@traced
@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    queued = wiring.drift_worker().queue_due_checks()
    totals = wiring.background_ledger().totals.read()
    metrics.add_metric(name="CommittedBytes", unit=MetricUnit.Bytes, value=totals.committed_bytes)
    metrics.add_metric(name="StoredBytes", unit=MetricUnit.Bytes, value=totals.used_bytes)
    metrics.add_metric(name="StoredObjects", unit=MetricUnit.Count, value=totals.object_count)
    return {
        "shardsQueued": queued,
        "committedBytes": totals.committed_bytes,
        "storedBytes": totals.used_bytes,
        "storedObjects": totals.object_count,
        "users": totals.users,
    }
