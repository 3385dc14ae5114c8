"""Lambda's DynamoDB event source mapping: a table's stream, read shard by shard, in order.

What Lambda does, and so what this does:

- reads every shard of the stream from ``TRIM_HORIZON``, a parent shard to its end before its
  children (``DescribeStream`` lists them; a closed shard's iterator runs out);
- turns each stream record into the record Lambda puts in the event: the record as
  ``GetRecords`` gives it, ``ApproximateCreationDateTime`` in epoch seconds (rounded down to
  the second as DynamoDB documents it, a JSON float as Lambda sends it), binary values in
  base64, and the stream's ``eventSourceARN``;
- drops the records no filter of ``FilterCriteria`` matches (they count as processed);
- gathers up to ``BatchSize`` records, waiting up to the batching window once the first is in;
- invokes the function with ``{"Records": [...]}``; when the function fails, invokes it again
  with the same batch while the shard waits (the records after it stay behind it, in order),
  up to ``MaximumRetryAttempts`` more times (-1, the default: until the stack stops, where
  Lambda gives up when the records expire after 24 hours); then sends the batch's description
  (``DDBStreamBatchInfo``, never the records) to the ``OnFailure`` queue, logs it, and goes on.

Unlike Lambda, the batching window is capped (a second by default), so a person watching the
totals or a test waiting for them is not kept a minute, and a failed batch is retried after a
fixed delay. Properties of the event this does not implement (``BisectBatchOnFunctionError``,
``ParallelizationFactor``, partial batch responses, ...) are refused when the stack starts.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import boto3

from local_stack.event_filters import RecordFilter, record_filter
from local_stack.functions import FakeContext

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.type_defs import GetShardIteratorInputTypeDef, RecordTypeDef

logger = logging.getLogger(__name__)

# Lambda polls each shard about four times a second.
POLL_SECONDS = 0.25
# The longest the local stack waits to fill a batch, whatever the template's window.
BATCHING_WINDOW_CAP = 1.0
# DynamoDB opens new shards every few hours; a finished shard makes the next poll look at once.
_DESCRIBE_SECONDS = 5.0
# GetRecords returns at most this many records a call.
_GET_RECORDS_LIMIT = 1000

# The properties of a template's `Type: DynamoDB` event that this module implements.
_PROPERTIES = {
    "Stream",
    "StartingPosition",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "MaximumRetryAttempts",
    "FilterCriteria",
    "DestinationConfig",
}


class StreamFunction(Protocol):
    """What the poller needs of a function (``functions.Function`` is one)."""

    @property
    def logical_id(self) -> str: ...

    def invoke(self, event: Any) -> Any: ...


@dataclass(frozen=True)
class StreamSource:
    """A template's DynamoDB event source, as Lambda reads its properties (with its defaults)."""

    stream_arn: str
    accepts: RecordFilter
    batch_size: int = 100
    batching_window: float = 0
    maximum_retry_attempts: int = -1
    on_failure_queue_arn: str | None = None

    @classmethod
    def of(cls, properties: Mapping[str, Any]) -> StreamSource:
        """The event's resolved ``Properties``; ValueError for what is not implemented here."""
        unknown = set(properties) - _PROPERTIES
        if unknown:
            raise ValueError(f"DynamoDB event properties not run locally: {sorted(unknown)}")
        if properties.get("StartingPosition") != "TRIM_HORIZON":
            raise ValueError("the local stack reads streams from TRIM_HORIZON only")
        return cls(
            stream_arn=properties["Stream"],
            accepts=record_filter(properties.get("FilterCriteria")),
            batch_size=int(properties.get("BatchSize", 100)),
            batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            on_failure_queue_arn=_on_failure_queue(properties.get("DestinationConfig")),
        )


def _on_failure_queue(config: Mapping[str, Any] | None) -> str | None:
    if not config:
        return None
    unknown = set(config) - {"OnFailure"}
    destination = config.get("OnFailure", {})
    arn = destination.get("Destination", "")
    if unknown or destination.get("Type", "SQS") != "SQS" or ":sqs:" not in arn:
        raise ValueError(f"the local stack sends failed batches to an SQS queue only: {config}")
    return str(arn)


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    # The next read's iterator; None until the shard is opened, and again after a failed read.
    iterator: str | None = None
    # The last record handled (delivered, retried out or filtered out): a reopened shard
    # starts after it.
    checkpoint: str | None = None
    finished: bool = False


class StreamPoller(threading.Thread):
    """Delivers a table stream's records to a function, as Lambda's event source mapping."""

    def __init__(
        self,
        function: StreamFunction,
        source: StreamSource,
        dynamodb_endpoint: str,
        sqs_endpoint: str,
        stop: threading.Event,
        *,
        retry_delay: float = 1.0,
        batching_window_cap: float = BATCHING_WINDOW_CAP,
    ) -> None:
        super().__init__(name=f"stream-{function.logical_id}", daemon=True)
        self._function = function
        self._function_arn = FakeContext(function.logical_id, 0).invoked_function_arn
        self._source = source
        self._streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint)
        self._sqs = boto3.client("sqs", endpoint_url=sqs_endpoint)
        self._on_failure_url: str | None = None
        if source.on_failure_queue_arn is not None:
            name = source.on_failure_queue_arn.rsplit(":", 1)[1]
            self._on_failure_url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        # Not `_stop`: Thread.join calls a method of that name.
        self._stopping = stop
        self._retry_delay = retry_delay
        self._window = min(source.batching_window, batching_window_cap)
        self._shards: dict[str, _Shard] = {}
        self._describe_at = 0.0

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.poll_once()
            except Exception:
                logger.exception("reading the stream %s failed", self._source.stream_arn)
                busy = False
            if not busy:
                self._stopping.wait(POLL_SECONDS)

    def poll_once(self) -> bool:
        """Reads (and delivers) one batch from each shard that may be read; True if any record
        was read, so more may be waiting."""
        if time.monotonic() >= self._describe_at:
            self._describe()
        busy = False
        for shard in list(self._shards.values()):
            parent = self._shards.get(shard.parent_id or "")
            if shard.finished or (parent is not None and not parent.finished):
                continue
            busy |= self._poll(shard)
        return busy

    def _describe(self) -> None:
        request: dict[str, Any] = {"StreamArn": self._source.stream_arn}
        while True:
            description = self._streams.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                shard_id = shard["ShardId"]
                if shard_id not in self._shards:
                    self._shards[shard_id] = _Shard(shard_id, shard.get("ParentShardId"))
            last = description.get("LastEvaluatedShardId")
            if last is None:
                break
            request["ExclusiveStartShardId"] = last
        self._describe_at = time.monotonic() + _DESCRIBE_SECONDS

    def _poll(self, shard: _Shard) -> bool:
        try:
            batch, last, read = self._gather(shard)
        except Exception:
            # An expired iterator, a trimmed record, the endpoint away: the records read since
            # the checkpoint are read again from a new iterator.
            shard.iterator = None
            raise
        if last is not None:
            shard.checkpoint = last
        if batch:
            self._deliver(shard, batch)
        return read

    def _gather(self, shard: _Shard) -> tuple[list[dict[str, Any]], str | None, bool]:
        """The next batch of the shard's records that pass the filters, the sequence number of
        the last record read, and whether any was read at all."""
        batch: list[dict[str, Any]] = []
        last: str | None = None
        first_at: float | None = None
        size = self._source.batch_size
        while True:
            if shard.iterator is None:
                shard.iterator = self._open(shard)
            response = self._streams.get_records(
                ShardIterator=shard.iterator, Limit=min(_GET_RECORDS_LIMIT, size - len(batch))
            )
            records = response.get("Records", [])
            for raw in records:
                record = lambda_record(raw, self._source.stream_arn)
                last = record["dynamodb"]["SequenceNumber"]
                if self._source.accepts(record):
                    batch.append(record)
            following = response.get("NextShardIterator")
            if following is None:
                shard.finished = True
                self._describe_at = 0.0  # its children may be read now
                return batch, last, True
            shard.iterator = following
            if not batch or len(batch) >= size:
                return batch, last, last is not None
            if first_at is None:
                first_at = time.monotonic()
            remaining = first_at + self._window - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                return batch, last, True
            if not records:
                self._stopping.wait(min(POLL_SECONDS, remaining))

    def _open(self, shard: _Shard) -> str:
        request: GetShardIteratorInputTypeDef = {
            "StreamArn": self._source.stream_arn,
            "ShardId": shard.shard_id,
            "ShardIteratorType": "TRIM_HORIZON",
        }
        if shard.checkpoint is not None:
            request["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            request["SequenceNumber"] = shard.checkpoint
        return self._streams.get_shard_iterator(**request)["ShardIterator"]

    def _deliver(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        """Invokes the function until it takes the batch or its retries are spent."""
        retries = self._source.maximum_retry_attempts
        invokes = 0
        while True:
            invokes += 1
            try:
                self._function.invoke({"Records": batch})
                return
            except Exception:
                logger.exception(
                    "%s failed on a stream batch (invocation %d); the shard waits for it",
                    self._function.logical_id,
                    invokes,
                )
            if 0 <= retries < invokes or self._stopping.wait(self._retry_delay):
                break
        if self._stopping.is_set():
            return
        failure = failure_record(
            self._function_arn, self._source.stream_arn, shard.shard_id, batch, invokes
        )
        if self._on_failure_url is not None:
            self._sqs.send_message(QueueUrl=self._on_failure_url, MessageBody=json.dumps(failure))
        logger.error(
            "%s: stream batch discarded after %d invocations: %s",
            self._function.logical_id,
            invokes,
            json.dumps(failure["DDBStreamBatchInfo"]),
        )


def lambda_record(raw: RecordTypeDef, stream_arn: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda puts it in a function's event."""
    record: dict[str, Any] = _as_json(dict(raw))
    record["eventSourceARN"] = stream_arn
    return record


def _as_json(value: Any) -> Any:
    """Undoes what botocore parsed: timestamps back to epoch seconds, binary back to base64."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, datetime):
        return float(int(value.timestamp()))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def failure_record(
    function_arn: str, stream_arn: str, shard_id: str, batch: list[dict[str, Any]], invokes: int
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination for a stream batch it gives up on."""
    first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invokes,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _arrival(first),
            "approximateArrivalOfLastRecord": _arrival(last),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


def _arrival(stream_record: Mapping[str, Any]) -> str:
    created = datetime.fromtimestamp(stream_record["ApproximateCreationDateTime"], UTC)
    return created.strftime("%Y-%m-%dT%H:%M:%SZ")
