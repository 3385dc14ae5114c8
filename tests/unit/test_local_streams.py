"""The local stack's DynamoDB stream event source against a moto server holding the template's
ledger table: the records Lambda would send, in order, filtered, batched, retried, and a batch
given up on described to the on-failure queue as Lambda describes it."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)
from botocore.exceptions import ClientError

from local_stack.moto_streams import patch_moto_streams
from local_stack.streams import BATCHING_WINDOW_CAP, StreamPoller, StreamSource
from local_stack.template import create_table_request
from tests.support.dynamodb import local_client, reset_moto, running_moto

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

TABLE = "ledger-streams"
DLQ = "audit-dlq"


@dataclass
class Recorder:
    """A function that keeps the events it gets and fails the first ``failures`` of them."""

    failures: int = 0
    logical_id: str = "UsageTotalsFunction"
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the function failed")
        return None

    def keys(self) -> list[list[str]]:
        return [[r["dynamodb"]["Keys"]["sk"]["S"] for r in e["Records"]] for e in self.events]


@dataclass
class Stack:
    endpoint: str
    stream_arn: str
    dlq_arn: str
    dlq_url: str
    event: dict[str, Any]

    def properties(self, **overrides: Any) -> dict[str, Any]:
        """The template's stream event of UsageTotalsFunction, resolved here."""
        properties = copy.deepcopy(self.event)
        properties["Stream"] = self.stream_arn
        properties["DestinationConfig"]["OnFailure"]["Destination"] = self.dlq_arn
        properties.update(overrides)
        return properties

    def poller(self, function: Recorder, window_cap: float = 0, **overrides: Any) -> StreamPoller:
        """A poller driven by the test (``poll_once``), with no waits unless asked for."""
        source = StreamSource.of(self.properties(**overrides))
        return StreamPoller(
            function,
            source,
            self.endpoint,
            self.endpoint,
            threading.Event(),
            retry_delay=0,
            batching_window_cap=window_cap,
        )

    def put(self, sk: str, **attributes: int) -> None:
        item = {"pk": {"S": "USER#alice"}, "sk": {"S": sk}}
        item.update({name: {"N": str(value)} for name, value in attributes.items()})
        local_client(self.endpoint).put_item(TableName=TABLE, Item=item)


def sqs_client(endpoint: str) -> SQSClient:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture
def stack(moto_server: str, template: dict[str, Any]) -> Stack:
    patch_moto_streams()  # as the local stack does
    reset_moto(moto_server)
    table = template["Resources"]["LedgerTable"]["Properties"]
    created = local_client(moto_server).create_table(
        **create_table_request(table, TABLE, stream=True)
    )
    sqs = sqs_client(moto_server)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    function = template["Resources"]["UsageTotalsFunction"]["Properties"]
    return Stack(
        endpoint=moto_server,
        stream_arn=created["TableDescription"]["LatestStreamArn"],
        dlq_arn=dlq_arn["Attributes"]["QueueArn"],
        dlq_url=dlq_url,
        event=function["Events"]["UsageChanges"]["Properties"],
    )


def drain(poller: StreamPoller) -> None:
    while poller.poll_once():
        pass


def test_inserts_changes_and_removals_arrive_in_order_with_both_images(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function)
    stack.put("USAGE", usedBytes=1)
    stack.put("USAGE", usedBytes=2)
    local_client(stack.endpoint).delete_item(
        TableName=TABLE, Key={"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}}
    )
    drain(poller)

    (event,) = function.events
    parse(event=event, model=DynamoDBStreamModel)  # the shape Powertools reads Lambda's in
    records = event["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    images = [
        (r["dynamodb"].get("OldImage", {}).get("usedBytes"), r["dynamodb"].get("NewImage", {}))
        for r in records
    ]
    assert [old for old, _ in images] == [None, {"N": "1"}, {"N": "2"}]
    assert [new.get("usedBytes") for _, new in images] == [{"N": "1"}, {"N": "2"}, None]
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence)
    for record in records:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == stack.stream_arn
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert record["dynamodb"]["Keys"] == {"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}}
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert isinstance(created, float)
        assert created == int(created)
    json.dumps(event)  # what travels to the function's environment


def test_an_update_that_creates_its_item_is_one_insert_of_the_whole_item(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function)
    local_client(stack.endpoint).update_item(
        TableName=TABLE,
        Key={"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}},
        UpdateExpression="SET usedBytes = :used",
        ExpressionAttributeValues={":used": {"N": "7"}},
    )
    drain(poller)
    (record,) = function.events[0]["Records"]
    assert record["eventName"] == "INSERT"
    assert record["dynamodb"]["NewImage"]["usedBytes"] == {"N": "7"}


def test_a_cancelled_transaction_records_nothing_and_reading_goes_on(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function, FilterCriteria=None)
    stack.put("K#0")
    drain(poller)  # the poller reads on from an iterator handed out before the transaction

    def key(sk: str) -> dict[str, Any]:
        return {"pk": {"S": "USER#alice"}, "sk": {"S": sk}}

    with pytest.raises(ClientError, match="TransactionCanceled"):
        local_client(stack.endpoint).transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": key("K#rolled-back")}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key("K#0"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    stack.put("K#1")
    drain(poller)
    assert function.keys() == [["K#0"], ["K#1"]]


def test_the_templates_filter_lets_only_usage_items_through(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function)
    stack.put("OBJ#users/alice/a.bin", size=5)
    stack.put("USAGE", usedBytes=5)
    stack.put("RES#0123456789abcdef0123456789abcdef")
    stack.put("OBJ#users/alice/b.bin", size=6)
    drain(poller)
    assert function.keys() == [["USAGE"]]

    stack.put("OBJ#users/alice/c.bin", size=7)
    drain(poller)
    assert len(function.events) == 1  # a batch filtered to nothing invokes nothing


def test_batches_hold_at_most_batch_size_records_in_stream_order(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function, BatchSize=2, FilterCriteria=None)
    for n in range(5):
        stack.put(f"K#{n}")
    drain(poller)
    assert function.keys() == [["K#0", "K#1"], ["K#2", "K#3"], ["K#4"]]


def test_a_batching_window_gathers_records_written_while_it_waits(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function, window_cap=BATCHING_WINDOW_CAP, FilterCriteria=None)
    stack.put("K#0")
    timer = threading.Timer(0.3, lambda: stack.put("K#1"))
    timer.start()
    drain(poller)  # the template's minute, capped locally to a second
    timer.join()
    assert function.keys() == [["K#0", "K#1"]]


def test_a_failing_batch_is_retried_whole_then_described_to_the_on_failure_queue(
    stack: Stack,
) -> None:
    function = Recorder(failures=10)
    poller = stack.poller(function, MaximumRetryAttempts=2)
    stack.put("USAGE", usedBytes=1)
    stack.put("USAGE", usedBytes=2)
    poller.poll_once()
    stack.put("USAGE", usedBytes=3)  # behind the failing batch: waits for it
    function.failures = 3
    drain(poller)

    keys = [
        [r["dynamodb"]["NewImage"]["usedBytes"]["N"] for r in e["Records"]] for e in function.events
    ]
    assert keys == [["1", "2"]] * 3 + [["3"]] * 3
    first = function.events[0]["Records"]
    assert all(e["Records"] == first for e in function.events[:3])  # the same batch each time

    sqs = sqs_client(stack.endpoint)
    received = sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in received["Messages"]]
    assert len(bodies) == 2
    for body in bodies:
        parse(event=body, model=DynamoDBStreamLambdaOnFailureDestinationModel)
        assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert body["requestContext"]["approximateInvokeCount"] == 3
        assert body["requestContext"]["functionArn"].endswith(":function:UsageTotalsFunction")
        assert body["responseContext"]["functionError"] == "Unhandled"
    info = bodies[0]["DDBStreamBatchInfo"]
    assert info["batchSize"] == 2
    assert info["streamArn"] == stack.stream_arn
    assert info["startSequenceNumber"] == first[0]["dynamodb"]["SequenceNumber"]
    assert info["endSequenceNumber"] == first[1]["dynamodb"]["SequenceNumber"]


def test_a_function_that_recovers_keeps_its_batch(stack: Stack) -> None:
    function = Recorder(failures=1)
    poller = stack.poller(function)
    stack.put("USAGE", usedBytes=1)
    drain(poller)
    assert len(function.events) == 2
    assert function.events[0] == function.events[1]
    sqs = sqs_client(stack.endpoint)
    assert "Messages" not in sqs.receive_message(QueueUrl=stack.dlq_url)


def test_a_failed_read_starts_again_after_the_last_record_handled(stack: Stack) -> None:
    function = Recorder()
    poller = stack.poller(function, FilterCriteria=None)
    stack.put("K#0")
    drain(poller)
    stack.put("K#1")
    for shard in poller._shards.values():
        shard.iterator = "not-an-iterator"
    with pytest.raises(ClientError):  # moto answers 500 where DynamoDB says ExpiredIterator
        poller.poll_once()
    drain(poller)
    assert function.keys() == [["K#0"], ["K#1"]]


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"StartingPosition": "LATEST"}, "TRIM_HORIZON"),
        ({"BisectBatchOnFunctionError": True}, "BisectBatchOnFunctionError"),
        ({"FunctionResponseTypes": ["ReportBatchItemFailures"]}, "FunctionResponseTypes"),
        (
            {"DestinationConfig": {"OnFailure": {"Type": "SNS", "Destination": "arn:x"}}},
            "SQS queue only",
        ),
        (
            {"FilterCriteria": {"Filters": [{"Pattern": '{"eventName": [{"prefix": "I"}]}'}]}},
            "content filters",
        ),
    ],
)
def test_stream_properties_not_run_locally_are_refused(
    stack: Stack, overrides: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        StreamSource.of(stack.properties(**overrides))


def test_the_templates_stream_event_reads_as_lambda_would(stack: Stack) -> None:
    source = StreamSource.of(stack.properties())
    assert source.stream_arn == stack.stream_arn
    assert (source.batch_size, source.batching_window) == (1000, 60)
    assert source.maximum_retry_attempts == 100
    assert source.on_failure_queue_arn == stack.dlq_arn
