"""Scheduled adapter: repairs drift between the ledger and the bucket, and reports it."""

from __future__ import annotations

import time
from dataclasses import asdict
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
    drift = wiring.reconciler().run(now=time.time())
    metrics.add_metric(name="DriftBytes", unit=MetricUnit.Bytes, value=drift.bytes_corrected)
    metrics.add_metric(name="DriftKeysRepaired", unit=MetricUnit.Count, value=drift.keys_repaired)
    metrics.add_metric(name="CommittedBytes", unit=MetricUnit.Bytes, value=drift.committed_bytes)
    if drift.bytes_corrected or drift.keys_repaired:
        logger.warning("ledger drift repaired", **asdict(drift))
    return asdict(drift)
