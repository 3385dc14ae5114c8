"""The drift repair functions in-process with their saved sample events, against moto."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from quota_uploads import wiring
from quota_uploads.ledger.totals import StoreTotals
from tests.support.lambdas import invoke, sample_event

SAMPLE_SUB = "3f1c2a9e-7b4d-4c55-9e0a-5d2b8c6f1a01"


@pytest.fixture(autouse=True)
def queue_url(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    url: str = boto3.client("sqs").create_queue(QueueName="audit-test")["QueueUrl"]
    monkeypatch.setenv("AUDIT_QUEUE_URL", url)
    wiring.reset()
    return url


def queued(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_the_stream_batch_is_added_to_the_totals_once() -> None:
    event = sample_event("dynamodb_stream_usage")
    assert invoke("usage_totals", event) == {"added": True, "changes": 2}
    assert invoke("usage_totals", event) == {"added": False, "changes": 2}
    assert wiring.background_ledger().totals.read() == StoreTotals(1048576, 1048576, 1, 1)


def test_changes_to_other_items_and_malformed_images_do_not_stop_the_batch() -> None:
    event = copy.deepcopy(sample_event("dynamodb_stream_usage"))
    register = copy.deepcopy(event["Records"][0])
    register["eventID"] = "register"
    register["dynamodb"]["Keys"]["sk"] = {"S": "OBJ#users/x/a.bin"}
    broken = copy.deepcopy(event["Records"][1])
    broken["eventID"] = "broken"
    broken["dynamodb"]["NewImage"]["usedBytes"] = {"N": "lots"}
    event["Records"] += [register, broken]
    assert invoke("usage_totals", event) == {"added": True, "changes": 2}


def test_the_hourly_run_queues_every_shard_and_reports_the_totals(queue_url: str) -> None:
    invoke("usage_totals", sample_event("dynamodb_stream_usage"))
    answer = invoke("reconcile", sample_event("schedule"))
    assert answer["shardsQueued"] == 8
    assert (answer["storedBytes"], answer["users"]) == (1048576, 1)
    assert sorted(body["shard"] for body in queued(queue_url)) == list(range(8))


def test_the_worker_does_due_checks_and_reports_a_malformed_message_alone(
    queue_url: str,
) -> None:
    event = copy.deepcopy(sample_event("sqs_audit_due_checks"))
    bad = copy.deepcopy(event["Records"][0])
    bad["messageId"] = "bad"
    bad["body"] = '{"kind": "due"}'
    event["Records"].append(bad)
    assert invoke("audit", event) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_a_manifest_of_another_bucket_starts_nothing(queue_url: str) -> None:
    s3 = boto3.client("s3")
    key = json.loads(sample_event("sqs_inventory_manifest")["Records"][0]["body"])["Records"][0]
    s3.create_bucket(Bucket=key["s3"]["bucket"]["name"])
    manifest = {
        "sourceBucket": "someone-else",
        "destinationBucket": key["s3"]["bucket"]["arn"],
        "version": "2016-11-30",
        "creationTimestamp": "1795510800000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": [{"key": "inventory/x/data/a.csv.gz", "size": 1, "MD5checksum": "0"}],
    }
    s3.put_object(
        Bucket=key["s3"]["bucket"]["name"],
        Key=key["s3"]["object"]["key"],
        Body=json.dumps(manifest).encode(),
    )
    assert invoke("audit", sample_event("sqs_inventory_manifest")) == {"batchItemFailures": []}
    assert queued(queue_url) == []
