"""S3 event adapter: SQS batches of S3 notifications in, ledger changes out.

Records are parsed one by one, but the ledger applies the whole batch together so it can read
every touched register in one request and write one transaction per user. Powertools'
BatchProcessor handles records strictly one at a time, so the partial batch response is built
here: a malformed message, or one whose user's changes failed, is reported alone and retried
(then dead-lettered by the queue's redrive policy) while the rest of the batch is kept.
"""

from __future__ import annotations

import gc

# Off until wiring.end_init(): collecting what init builds is wasted work on a cold start.
gc.disable()

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.notifications import crossing_message, publish_crossing
from quota_uploads.s3_events import MalformedEvent, ObjectEvent, parse_notification
from quota_uploads.tracing import traced

logger = Logger()
metrics = Metrics()


@traced
@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=SQSEvent)
def lambda_handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    failures: list[str] = []
    events_of: dict[str, list[ObjectEvent]] = {}
    for record in event.records:
        try:
            events_of[record.message_id] = parse_notification(record.body)
        except MalformedEvent as error:
            logger.warning("malformed message", message_id=record.message_id, reason=str(error))
            failures.append(record.message_id)
    if failures:
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=len(failures))
    applied = wiring.ledger().apply_events(e for events in events_of.values() for e in events)
    failures += [
        message_id
        for message_id, events in events_of.items()
        if any(e.owner.sub in applied.failed for e in events)
    ]
    topic = wiring.settings().alerts_topic_arn
    for crossing in applied.crossings:
        # One metric for all users: a dimension per user would cost a custom metric each.
        name = "UsersOverThreshold" if crossing.name == "threshold" else "UsersExhausted"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        logger.warning("user crossed a storage level", **crossing_message(crossing))
        if topic:
            try:
                publish_crossing(wiring.sns(), topic, crossing)
            except Exception:
                # Usage is already applied; failing the batch would not resend the notice.
                logger.exception("could not publish the crossing", user=crossing.sub)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


# Batches are read and written by the hand-written client, but a conflict raises botocore's
# exceptions: build the botocore client it hands over to during init, frozen with the rest.
wiring.botocore_dynamodb()
wiring.end_init()
