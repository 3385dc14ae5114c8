"""Scheduled adapter: releases reservations whose time ran out and aborts their S3 uploads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.tracing import traced

logger = Logger()
metrics = Metrics()
# Stop taking new users this close to the timeout; the next run (a minute later) goes on.
_RESERVE_MS = 5_000


@traced
@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    swept = wiring.uploads().sweep(
        should_stop=lambda: context.get_remaining_time_in_millis() < _RESERVE_MS
    )
    metrics.add_metric(name="ReservationsReleased", unit=MetricUnit.Count, value=swept.reservations)
    # Emitted when zero too, so the alarm on it tells "none failed" from "no data".
    metrics.add_metric(name="SweepFailures", unit=MetricUnit.Count, value=swept.failures)
    if swept.failures:
        logger.error("some reservations could not be swept", **asdict(swept))
    elif swept.reservations or swept.uploads_aborted:
        logger.info("released expired reservations", **asdict(swept))
    return asdict(swept)
