"""What AWS does between resources: SQS event source mappings and EventBridge schedules."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import boto3

from local_stack.functions import Function

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    match = _RATE.fullmatch(expression)
    if match is None:
        raise ValueError(f"the local stack only runs rate() schedules, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class QueuePoller(threading.Thread):
    """Like Lambda's SQS event source mapping with ReportBatchItemFailures.

    Messages the function reports as failed stay on the queue and come back after a short
    visibility delay (AWS waits the queue's full visibility timeout), so the queue's redrive
    policy moves poison messages to the dead-letter queue exactly as deployed.
    """

    def __init__(
        self,
        function: Function,
        queue_arn: str,
        endpoint: str,
        stop: threading.Event,
        batch_size: int = 10,
        retry_delay: int = 1,
    ) -> None:
        super().__init__(name=f"poll-{function.logical_id}", daemon=True)
        self._function = function
        self._arn = queue_arn
        self._sqs = boto3.client("sqs", endpoint_url=endpoint)
        self._url = self._sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        self._stopped = stop
        self._batch_size = batch_size
        self._retry_delay = retry_delay

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("polling %s failed", self._arn)
                self._stopped.wait(1)

    def poll_once(self) -> None:
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        event = {"Records": [self._record(m) for m in messages]}
        try:
            result = self._function.invoke(event)
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:
            logger.exception(
                "%s raised; the whole batch will be retried", self._function.logical_id
            )
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self._url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_delay,
                )
            else:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def _record(self, message: MessageTypeDef) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._arn.split(":")[3],
        }


class Schedule(threading.Thread):
    """Invokes a function on a fixed interval with an EventBridge scheduled event."""

    def __init__(self, function: Function, interval: float, stop: threading.Event) -> None:
        super().__init__(name=f"schedule-{function.logical_id}", daemon=True)
        self._function = function
        self._interval = interval
        self._stopped = stop

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._function.invoke(scheduled_event())
            except Exception:
                logger.exception("scheduled %s failed", self._function.logical_id)


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }


class TopicPrinter(threading.Thread):
    """Shows a person what SNS subscribers would get: the topic is fanned out to a queue."""

    def __init__(self, topic_arn: str, endpoint: str, stop: threading.Event) -> None:
        super().__init__(name="topic-printer", daemon=True)
        sns = boto3.client("sns", endpoint_url=endpoint)
        self._sqs = boto3.client("sqs", endpoint_url=endpoint)
        name = topic_arn.rsplit(":", 1)[1] + "-printer"
        self._url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        self._stopped = stop

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:
                logger.exception("reading the alerts topic failed")
                self._stopped.wait(1)
                continue
            for message in messages:
                print(f"ALERT (SNS) {message['Body']}", flush=True)
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
