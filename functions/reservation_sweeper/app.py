"""Scheduled adapter: releases reservations whose upload URL expired without an upload."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.tracing import traced

logger = Logger()


@traced
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    released = wiring.uploads().sweep()
    if released:
        logger.info("released expired reservations", released=released)
    return {"released": released}
