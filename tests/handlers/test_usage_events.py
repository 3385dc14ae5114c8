"""The usage function in-process: SQS batches of S3 notifications against moto."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from quota_uploads import wiring
from tests.support.lambdas import invoke, sample_event
from tests.support.s3_notifications import notification, record

# The user every saved sample event under events/ belongs to.
SAMPLE_SUB = "3f1c2a9e-7b4d-4c55-9e0a-5d2b8c6f1a01"


@pytest.fixture(autouse=True)
def _moto(aws: None) -> None:
    """Every test here runs against a fresh in-process moto."""


def sqs_batch(*bodies: str) -> dict[str, Any]:
    base = sample_event("sqs_s3_object_created")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        message = copy.deepcopy(base)
        message["messageId"] = f"m{index}"
        message["body"] = body
        records.append(message)
    return {"Records": records}


def test_the_saved_create_and_delete_events_move_usage_and_back() -> None:
    sub = SAMPLE_SUB
    assert invoke("usage_events", sample_event("sqs_s3_object_created")) == {
        "batchItemFailures": []
    }
    usage = wiring.ledger().usage(sub)
    assert (usage.used_bytes, usage.object_count) == (1048576, 1)
    assert invoke("usage_events", sample_event("sqs_s3_object_created")) == {
        "batchItemFailures": []
    }
    assert wiring.ledger().usage(sub).used_bytes == 1048576
    assert invoke("usage_events", sample_event("sqs_s3_object_removed")) == {
        "batchItemFailures": []
    }
    usage = wiring.ledger().usage(sub)
    assert (usage.used_bytes, usage.object_count) == (0, 0)


def test_the_test_event_is_acknowledged() -> None:
    assert invoke("usage_events", sample_event("sqs_s3_test_event")) == {"batchItemFailures": []}


def test_a_malformed_message_fails_alone() -> None:
    good = notification(record("users/alice/a.bin", size=10))
    other = notification(record("users/bob/b.bin", size=20))
    result = invoke("usage_events", sqs_batch(good, "not json", other, '{"Records": [1]}'))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert wiring.ledger().usage("alice").used_bytes == 10
    assert wiring.ledger().usage("bob").used_bytes == 20


def test_only_messages_of_a_user_whose_write_failed_are_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    db = wiring.dynamodb()
    real = db.transact_write_items

    def failing_for_bob(**kwargs: Any) -> Any:
        if "USER#bob" in json.dumps(kwargs["TransactItems"]):
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(db, "transact_write_items", failing_for_bob)
    batch = sqs_batch(
        notification(record("users/alice/a.bin", size=10)),
        notification(record("users/bob/b.bin", size=20)),
        notification(record("users/alice/c.bin", size=5)),
    )
    assert invoke("usage_events", batch) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert wiring.ledger().usage("alice").used_bytes == 15
    monkeypatch.undo()
    # The retried message alone, plus a redelivered one: nothing is counted twice.
    retry = sqs_batch(notification(record("users/bob/b.bin", size=20)), batch["Records"][0]["body"])
    assert invoke("usage_events", retry) == {"batchItemFailures": []}
    assert wiring.ledger().usage("bob").used_bytes == 20
    assert wiring.ledger().usage("alice").used_bytes == 15


def test_the_sweeper_releases_expired_reservations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_URL_EXPIRY_SECONDS", "0")
    monkeypatch.setenv("RESERVATION_GRACE_SECONDS", "0")
    wiring.reset()
    ledger = wiring.ledger()
    ledger.grant("alice", ledger.new_upload_id(100))
    swept = invoke("reservation_sweeper", sample_event("schedule"))
    assert (swept["reservations"], swept["bytes"], swept["failures"]) == (1, 100, 0)
    assert wiring.ledger().usage("alice").reserved_bytes == 0


def test_a_crossing_emits_a_metric_without_user_dimension_and_an_sns_notice(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sns = wiring.sns()
    sqs = boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    monkeypatch.setenv("ALERTS_TOPIC_ARN", topic)
    wiring.reset()
    capsys.readouterr()

    batch = sqs_batch(notification(record("users/carol/big.bin", size=850)))
    assert invoke("usage_events", batch) == {"batchItemFailures": []}

    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    (emf,) = [line for line in lines if "_aws" in line]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "QuotaUploads"
    assert directive["Dimensions"] == [["service"]]
    assert {m["Name"] for m in directive["Metrics"]} >= {"UsersOverThreshold"}
    assert emf["UsersOverThreshold"] in (1.0, [1.0])
    (log,) = [r for r in caplog.records if r.getMessage() == "user crossed a storage level"]
    assert (log.userId, log.usedBytes, log.quotaBytes) == ("carol", 850, 1000)  # type: ignore[attr-defined]

    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"]) == {
        "type": "quota.threshold",
        "userId": "carol",
        "usedBytes": 850,
        "quotaBytes": 1000,
        "percentUsed": 85.0,
    }

    again = sqs_batch(notification(record("users/carol/more.bin", size=10)))
    assert invoke("usage_events", again) == {"batchItemFailures": []}
    assert "UsersOverThreshold" not in capsys.readouterr().out
