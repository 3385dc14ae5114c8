"""The hand-written DynamoDB calls: botocore's signature, botocore's answers and errors."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from local_stack.processes import free_port
from quota_uploads.dynamodb_fast import FastDynamoDB
from quota_uploads.sigv4 import Credentials

NOW = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)
KEY = {"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}}


def fast(
    endpoint: str | None,
    token: str | None = None,
    region: str = "us-east-1",
    suffix: str = "amazonaws.com",
) -> FastDynamoDB:
    return FastDynamoDB(
        region=region,
        endpoint_url=endpoint,
        dns_suffix=suffix,
        credentials=lambda: Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token),
        botocore_client=lambda: botocore_client(endpoint, region),
    )


@cache
def botocore_endpoint(endpoint: str | None, region: str) -> str:
    url: str = botocore_client(endpoint, region).meta.endpoint_url
    return url


def botocore_client(endpoint: str | None, region: str = "us-east-1") -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG",
    )


@settings(max_examples=200, deadline=None)
@given(
    operation=st.sampled_from(
        ["UpdateItem", "GetItem", "PutItem", "BatchGetItem", "TransactWriteItems"]
    ),
    body=st.binary(max_size=300),
    token=st.none() | st.text("abcXYZ019+/=", min_size=1, max_size=40),
    partition=st.sampled_from(
        [
            ("us-east-1", "amazonaws.com"),
            ("eu-west-1", "amazonaws.com"),
            ("cn-northwest-1", "amazonaws.com.cn"),
            ("us-gov-west-1", "amazonaws.com"),
        ]
    ),
    endpoint=st.sampled_from([None, "http://127.0.0.1:8000", "https://localhost:443"]),
)
def test_the_signature_is_botocores(
    operation: str,
    body: bytes,
    token: str | None,
    partition: tuple[str, str],
    endpoint: str | None,
) -> None:
    region, suffix = partition
    client = fast(endpoint, token, region, suffix)
    headers = client.signed_headers(operation, body, NOW)
    assert client.endpoint_url == botocore_endpoint(endpoint, region)
    request = AWSRequest(
        method="POST",
        url=client.endpoint_url + "/",
        data=body,
        headers={k: v for k, v in headers.items() if k != "Authorization"},
    )
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    signer = SigV4Auth(
        BotocoreCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token), "dynamodb", region
    )
    # Hypothesis runs this many times within one test, so the clock is patched per example and
    # undone at once: botocore's clock must not stay frozen for the tests after this one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
        signer.add_auth(request)
    assert headers["Authorization"] == request.headers["Authorization"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    botocore_client(url).create_table(
        TableName="t",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield url
    server.stop()


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_answers_are_botocores(endpoint: str) -> None:
    ours, theirs = fast(endpoint), botocore_client(endpoint)
    update = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "ADD n :one SET s = :s",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":s": {"S": "ü ✓"}},
        "ReturnValues": "ALL_NEW",
    }
    mine = ours.update_item(**update)
    assert mine["Attributes"]["n"] == {"N": "1"}
    assert without_metadata(theirs.update_item(**update))["Attributes"]["n"] == {"N": "2"}
    assert without_metadata(ours.get_item(TableName="t", Key=KEY, ConsistentRead=True)) == (
        without_metadata(theirs.get_item(TableName="t", Key=KEY, ConsistentRead=True))
    )
    assert ours.get_item(TableName="t", Key={**KEY, "sk": {"S": "none"}}) == {}


def test_batch_answers_and_cancelled_transactions_are_botocores(endpoint: str) -> None:
    ours, theirs = fast(endpoint), botocore_client(endpoint)
    other = {**KEY, "sk": {"S": "other"}}
    ours.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {**KEY, "v": {"N": "1"}}}},
            {"Put": {"TableName": "t", "Item": {**other, "v": {"S": "ü ✓"}}}},
        ]
    )
    read = {"RequestItems": {"t": {"Keys": [KEY, other], "ConsistentRead": True}}}

    def items(answer: dict[str, Any]) -> list[Any]:
        return sorted(answer["Responses"]["t"], key=lambda item: item["sk"]["S"])

    assert items(ours.batch_get_item(**read)) == items(theirs.batch_get_item(**read))
    refused = {
        "TransactItems": [
            {
                "Update": {
                    "TableName": "t",
                    "Key": KEY,
                    "UpdateExpression": "SET v = :two",
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ExpressionAttributeValues": {":two": {"N": "2"}},
                }
            },
            {"Delete": {"TableName": "t", "Key": other}},
        ]
    }
    with pytest.raises(ours.exceptions.TransactionCanceledException) as mine:
        ours.transact_write_items(**refused)
    with pytest.raises(theirs.exceptions.TransactionCanceledException) as botocores:
        theirs.transact_write_items(**refused)
    assert mine.value.response["Error"]["Code"] == botocores.value.response["Error"]["Code"]
    assert mine.value.response.get("CancellationReasons") == botocores.value.response.get(
        "CancellationReasons"
    )


def test_a_failed_condition_raises_botocores_exception_with_the_old_item(endpoint: str) -> None:
    ours = fast(endpoint)
    request = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "SET s = :s",
        "ConditionExpression": "attribute_not_exists(pk)",
        "ExpressionAttributeValues": {":s": {"S": "x"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    ours.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET s = :s",
        ExpressionAttributeValues={":s": {"S": "old"}},
    )
    with pytest.raises(ours.exceptions.ConditionalCheckFailedException) as mine:
        ours.update_item(**request)
    with pytest.raises(
        botocore_client(endpoint).exceptions.ConditionalCheckFailedException
    ) as theirs:
        botocore_client(endpoint).update_item(**request)
    assert mine.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"]
    assert mine.value.response["Item"] == theirs.value.response["Item"]


def test_other_operations_are_botocores(endpoint: str) -> None:
    assert fast(endpoint).describe_table(TableName="t")["Table"]["TableName"] == "t"


def test_an_unreachable_endpoint_falls_back_to_botocores_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setattr("quota_uploads.dynamodb_fast.time.sleep", lambda _: None)
    dead = f"http://127.0.0.1:{free_port()}"
    client = FastDynamoDB(
        region="us-east-1",
        endpoint_url=dead,
        credentials=lambda: Credentials("a", "b"),
        botocore_client=lambda: boto3.client(
            "dynamodb",
            endpoint_url=dead,
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
            config=Config(retries={"max_attempts": 1}),
        ),
    )
    with pytest.raises(EndpointConnectionError):
        client.get_item(TableName="t", Key=KEY)


class _ClosingHandler(BaseHTTPRequestHandler):
    """Answers as DynamoDB would, then closes the connection without saying so."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"Item": KEY}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


class _ClosingServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ClosingHandler)
        self.closed: queue.Queue[None] = queue.Queue()

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.closed.put(None)


def test_a_connection_closed_while_idle_is_replaced_without_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_backoff(seconds: float) -> None:
        raise AssertionError("retried after a failure instead of reconnecting")

    monkeypatch.setattr("quota_uploads.dynamodb_fast.time.sleep", no_backoff)
    server = _ClosingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = fast(f"http://127.0.0.1:{server.server_address[1]}")
        for _ in range(3):
            assert client.get_item(TableName="t", Key=KEY) == {"Item": KEY}
            server.closed.get(timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_threads_share_one_botocore_client_so_raised_and_caught_classes_match(
    endpoint: str,
) -> None:
    made: list[Any] = []

    def separate_session_each_time() -> Any:
        # Clients of different sessions have distinct exception classes: the worst case.
        client = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG",
        )
        made.append(client)
        return client

    ours = FastDynamoDB(
        region="us-east-1",
        endpoint_url=endpoint,
        credentials=lambda: Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"),
        botocore_client=separate_session_each_time,
    )
    ours.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET s = :s",
        ExpressionAttributeValues={":s": {"S": "taken"}},
    )
    start = threading.Barrier(8)

    def refused() -> bool:
        start.wait()
        try:
            ours.update_item(
                TableName="t",
                Key=KEY,
                UpdateExpression="SET s = :s",
                ConditionExpression="attribute_not_exists(pk)",
                ExpressionAttributeValues={":s": {"S": "x"}},
            )
        except ours.exceptions.ConditionalCheckFailedException:
            return True
        return False

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda _: refused(), range(8)))
    assert len(made) == 1
