"""Drift repair against moto: inject drift, reconcile, and the ledger equals the bucket again."""

from __future__ import annotations

import time
from typing import Any

import pytest

from quota_uploads.config import Settings
from quota_uploads.ledger import Ledger
from quota_uploads.reconcile import Reconciler
from quota_uploads.s3_events import parse_notification
from tests.conftest import BUCKET
from tests.support.s3_notifications import notification, record

SETTLE = 3600
LATER = time.time() + 2 * SETTLE
KEY = "users/alice/0123456789abcdef0123456789abcdef/a.bin"


@pytest.fixture
def ledger(dynamodb: Any, settings: Settings) -> Ledger:
    return Ledger(dynamodb, settings, clock=lambda: LATER)


@pytest.fixture
def reconciler(ledger: Ledger, s3: Any) -> Reconciler:
    return Reconciler(
        ledger,
        s3,
        BUCKET,
        settle_seconds=SETTLE,
        release_stale=lambda: ledger.release_expired(abort=lambda key, s3_upload_id: None),
    )


def put(s3: Any, key: str, size: int) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)


def event_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def test_an_object_whose_event_was_lost_is_charged(
    reconciler: Reconciler, ledger: Ledger, s3: Any
) -> None:
    put(s3, KEY, 300)
    drift = reconciler.run(now=LATER)
    assert (drift.keys_repaired, drift.bytes_corrected) == (1, 300)
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.object_count) == (300, 1)
    assert reconciler.run(now=LATER).keys_repaired == 0


def test_a_delete_whose_event_was_lost_frees_the_space(
    reconciler: Reconciler, ledger: Ledger
) -> None:
    created = record(KEY, size=500, time=event_time(time.time() - SETTLE))
    ledger.apply_events(parse_notification(notification(created)))
    assert ledger.usage("alice").used_bytes == 500
    drift = reconciler.run(now=LATER)
    assert drift.bytes_corrected == 500
    assert ledger.usage("alice").used_bytes == 0


def test_recent_changes_are_left_to_their_events(
    reconciler: Reconciler, ledger: Ledger, s3: Any
) -> None:
    put(s3, KEY, 300)
    assert reconciler.run(now=time.time()).keys_repaired == 0
    assert ledger.usage("alice").used_bytes == 0


def test_counters_that_drifted_from_the_registers_are_corrected(
    reconciler: Reconciler, ledger: Ledger, dynamodb: Any, s3: Any
) -> None:
    put(s3, KEY, 200)
    ledger.apply_events(parse_notification(notification(record(KEY, size=200))))
    dynamodb.update_item(
        TableName="ledger-test",
        Key={"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}},
        UpdateExpression="ADD usedBytes :x, reservedBytes :x, objectCount :one",
        ExpressionAttributeValues={":x": {"N": "999"}, ":one": {"N": "1"}},
    )
    drift = reconciler.run(now=LATER)
    assert drift.bytes_corrected == 2 * 999
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes, usage.object_count) == (200, 0, 1)
    assert ledger.grant("alice", ledger.new_upload_id(800)).available_bytes == 0


def test_a_real_event_after_a_repair_still_applies(
    reconciler: Reconciler, ledger: Ledger, s3: Any
) -> None:
    put(s3, KEY, 300)
    reconciler.run(now=LATER)
    deleted = record(KEY, created=False, time=event_time(LATER + 1))
    ledger.apply_events(parse_notification(notification(deleted)))
    assert ledger.usage("alice").used_bytes == 0


def test_stale_reservations_are_released(
    reconciler: Reconciler, dynamodb: Any, settings: Settings
) -> None:
    early = Ledger(dynamodb, settings, clock=lambda: 0)
    early.grant("alice", early.new_upload_id(100))
    drift = reconciler.run(now=LATER)
    assert drift.reservations_released == 1


def test_the_run_reports_used_plus_reserved_over_all_users(
    reconciler: Reconciler, ledger: Ledger, s3: Any
) -> None:
    put(s3, KEY, 300)
    put(s3, "users/bob/0123456789abcdef0123456789abcdef/b.bin", 50)
    ledger.grant("bob", ledger.new_upload_id(200))
    assert reconciler.run(now=LATER).committed_bytes == 300 + 50 + 200
