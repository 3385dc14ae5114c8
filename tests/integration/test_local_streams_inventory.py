"""Drift repair's fan-out through the running local stack: an inventory report written by the
local S3 starts the audit, which repairs a create and a delete the ledger never heard of, and
the table's stream keeps the store-wide totals; and the stream poller on DynamoDB Local."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from local_stack.dynamodb_local import running_dynamodb_local
from local_stack.functions import ROOT
from local_stack.streams import StreamPoller, StreamSource
from local_stack.template import create_table_request
from quota_uploads.config import Settings
from quota_uploads.ledger import Ledger
from quota_uploads.ledger.totals import StoreTotals
from tests.support.dynamodb import local_client
from tests.support.local_stack_process import RunningProcess, eventually, local_stack_process
from tests.support.tokens import local_token

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

QUOTA = 100_000
UPLOADS = "quota-uploads-local-uploadsbucket"
TABLE = "quota-uploads-local-ledgertable"


@pytest.fixture(scope="module", params=["moto", "dynamodb-local"])
def stack(request: pytest.FixtureRequest) -> Iterator[RunningProcess]:
    engine = ["--dynamodb-local"] if request.param == "dynamodb-local" else []
    with pytest.MonkeyPatch.context() as environment:
        # Checks may repair what has been still for a second, not an hour.
        environment.setenv("RECONCILE_SETTLE_SECONDS", "0")
        # No report at start: this test writes the one the audit reads.
        with local_stack_process(
            "--parameter", f"DefaultQuotaBytes={QUOTA}", "--inventory-interval", "0", *engine
        ) as running:
            yield running


def table_endpoint(stack: RunningProcess) -> str:
    found = re.search(r"table in (http://[^)\s]+)", "".join(stack.output))
    assert found, stack.output
    return found.group(1)


class User:
    def __init__(self, api: str, user: str) -> None:
        self.api = api
        identity = local_token(api, user)
        self.sub = identity.sub
        self.session = requests.Session()
        self.session.headers.update(identity.headers)

    def get(self, path: str) -> dict[str, Any]:
        answer = self.session.get(f"{self.api}{path}", timeout=10)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def upload(self, data: bytes, name: str) -> str:
        body: dict[str, Any] = {
            "filename": name,
            "size": len(data),
            "contentType": "application/octet-stream",
        }
        answer = self.session.post(f"{self.api}/uploads", json=body, timeout=10)
        assert answer.status_code == 201, answer.text
        grant = answer.json()
        assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10).ok
        key: str = grant["key"]
        return key


def s3_client(endpoint: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@contextlib.contextmanager
def notifications_off(s3: S3Client, bucket: str) -> Iterator[None]:
    """Changes made meanwhile reach S3 but never the ledger: events lost."""
    queues = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        yield
    finally:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues}
        )


def test_the_inventory_audit_repairs_a_lost_create_and_a_lost_delete(
    stack: RunningProcess,
) -> None:
    alice = User(stack.url, "alice")
    uploaded = alice.upload(b"a" * 1000, "a.bin")
    eventually(lambda: alice.get("/usage"), lambda u: u["usedBytes"] == 1000)
    last_touch = time.time()

    s3 = s3_client(stack.aws_endpoint)
    lost = f"users/{alice.sub}/by-hand.bin"
    with notifications_off(s3, UPLOADS):
        s3.put_object(Bucket=UPLOADS, Key=lost, Body=b"b" * 500)
        s3.delete_object(Bucket=UPLOADS, Key=uploaded)
    usage = alice.get("/usage")
    assert (usage["usedBytes"], usage["objectCount"]) == (1000, 1)  # the ledger heard nothing

    # The audit leaves users touched since the report began to the hourly pass, by the second.
    eventually(time.time, lambda now: int(now) > int(last_touch))
    written = subprocess.run(
        [sys.executable, "-m", "local_stack.inventory", "--endpoint", stack.aws_endpoint],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "(1 objects)" in written.stdout

    usage = eventually(
        lambda: alice.get("/usage"), lambda u: (u["usedBytes"], u["objectCount"]) == (500, 1), 30
    )
    assert usage["reservedBytes"] == 0
    assert [f["key"] for f in alice.get("/files")["files"]] == [lost]

    settings = Settings(table_name=TABLE, bucket_name=UPLOADS, default_quota_bytes=QUOTA)
    totals = Ledger(local_client(table_endpoint(stack)), settings).totals
    expected = StoreTotals(used_bytes=500, committed_bytes=500, object_count=1, users=1)
    eventually(totals.read, lambda read: read == expected, 15)


def test_the_stream_poller_reads_dynamodb_local(template: dict[str, Any]) -> None:
    with running_dynamodb_local() as endpoint:
        # DynamoDB Local keeps a database per access key: the poller's, as in the stack.
        db = boto3.client("dynamodb", endpoint_url=endpoint)
        table = template["Resources"]["LedgerTable"]["Properties"]
        created = db.create_table(**create_table_request(table, "ledger-stream", stream=True))
        stream_arn = created["TableDescription"]["LatestStreamArn"]
        event = template["Resources"]["UsageTotalsFunction"]["Properties"]["Events"]
        properties = {**event["UsageChanges"]["Properties"], "Stream": stream_arn}
        del properties["DestinationConfig"]
        events: list[dict[str, Any]] = []

        class Function:
            logical_id = "UsageTotalsFunction"

            def invoke(self, event: Any) -> None:
                events.append(event)

        poller = StreamPoller(
            Function(),
            StreamSource.of(properties),
            endpoint,
            endpoint,
            threading.Event(),
            batching_window_cap=0,
        )
        usage = {"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}}
        db.put_item(TableName="ledger-stream", Item={**usage, "usedBytes": {"N": "1"}})
        db.put_item(TableName="ledger-stream", Item={**usage, "sk": {"S": "OBJ#users/a/f"}})
        db.delete_item(TableName="ledger-stream", Key=usage)
        while poller.poll_once():
            pass

        records = [record for event in events for record in event["Records"]]
        assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
        assert records[1]["dynamodb"]["OldImage"]["usedBytes"] == {"N": "1"}
        assert {r["eventSourceARN"] for r in records} == {stream_arn}
