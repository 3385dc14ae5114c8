"""Drift repair against moto: inject drift, let the passes run, and the ledger equals the bucket.

The queue is a list here: each test drains it through the worker, as the audit function would.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus

import pytest

from quota_uploads.config import Settings
from quota_uploads.drift.check import Repaired, UserCheck
from quota_uploads.drift.work import DueChecks, MalformedWork, Work, Worker
from quota_uploads.ledger import Ledger
from quota_uploads.ledger.checks import WRITE_LAG_SECONDS, mark_due
from quota_uploads.ledger.table import Table, expiry_shard
from quota_uploads.s3_events import parse_notification
from tests.conftest import BUCKET, TABLE
from tests.support.s3_notifications import notification, record

SETTLE = 3600
REPORTS = "reports-test"


def key_of(sub: str, name: str = "a.bin") -> str:
    return f"users/{sub}/0123456789abcdef0123456789abcdef/{name}"


class Clock:
    def __init__(self) -> None:
        # Real time to begin with: the objects moto stores are stamped with it.
        self.start = self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Queue:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, work: Sequence[Work]) -> None:
        self.messages += [message.model_dump_json() for message in work]


class Lists:
    """Counts the S3 LIST requests a pass makes."""

    def __init__(self, s3: Any) -> None:
        self.count = 0
        s3.meta.events.register("before-call.s3.ListObjectsV2", self._seen)

    def _seen(self, **_: Any) -> None:
        self.count += 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(dynamodb: Any, settings: Settings, clock: Clock) -> Ledger:
    return Ledger(dynamodb, settings, clock=clock)


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def worker(ledger: Ledger, s3: Any, queue: Queue, clock: Clock) -> Worker:
    check = UserCheck(ledger, s3, BUCKET, SETTLE)
    return Worker(ledger, s3, check, queue.send, BUCKET, clock=clock)


def drain(worker: Worker, queue: Queue, stop_after_each_page: bool = False) -> dict[str, int]:
    done = dict.fromkeys(
        ("checked", "keys_repaired", "bytes_corrected", "failures", "scheduled", "messages"), 0
    )
    while queue.messages:
        progress = worker.handle(queue.messages.pop(0), lambda: stop_after_each_page)
        done["messages"] += 1
        for name in ("checked", "keys_repaired", "bytes_corrected", "failures", "scheduled"):
            done[name] += getattr(progress, name)
    return done


def put(s3: Any, key: str, size: int) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)


def arrive(ledger: Ledger, key: str, size: int) -> None:
    ledger.apply_events(parse_notification(notification(record(key, size=size))))


def usage_item(dynamodb: Any, sub: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"USER#{sub}"}, "sk": {"S": "USAGE"}}
    ).get("Item", {})
    return item


def drop_register(dynamodb: Any, key: str) -> None:
    sub = key.split("/")[1]
    dynamodb.delete_item(
        TableName=TABLE, Key={"pk": {"S": f"USER#{sub}"}, "sk": {"S": f"OBJ#{key}"}}
    )


# --- one user's check -----------------------------------------------------------------------


def test_a_check_charges_an_object_whose_event_was_lost(
    worker: Worker, ledger: Ledger, s3: Any, clock: Clock
) -> None:
    check = UserCheck(ledger, s3, BUCKET, SETTLE)
    put(s3, key_of("alice"), 300)
    clock.now += 2 * SETTLE
    assert check.check("alice", clock.now).bytes == 300
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.object_count) == (300, 1)
    assert check.check("alice", clock.now).keys == 0


def test_a_check_leaves_recent_changes_to_their_events(ledger: Ledger, s3: Any) -> None:
    put(s3, key_of("alice"), 300)
    assert UserCheck(ledger, s3, BUCKET, SETTLE).check("alice", time.time()).keys == 0
    assert ledger.usage("alice").used_bytes == 0


def test_a_check_sets_drifted_counters_to_the_registers_and_repairs_in_one_go(
    ledger: Ledger, s3: Any, dynamodb: Any, clock: Clock
) -> None:
    put(s3, key_of("alice"), 200)
    arrive(ledger, key_of("alice"), 200)
    put(s3, key_of("alice", "lost.bin"), 50)
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}},
        UpdateExpression="ADD usedBytes :x, objectCount :one",
        ExpressionAttributeValues={":x": {"N": "999"}, ":one": {"N": "1"}},
    )
    clock.now += 2 * SETTLE
    repaired = UserCheck(ledger, s3, BUCKET, SETTLE).check("alice", clock.now)
    assert (repaired.keys, repaired.bytes) == (1, 50 + 999)
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.object_count) == (250, 2)


def test_a_lost_create_and_a_lost_delete_of_one_size_are_repaired_once_they_show(
    ledger: Ledger, s3: Any, clock: Clock
) -> None:
    check = UserCheck(ledger, s3, BUCKET, SETTLE)
    put(s3, key_of("alice", "kept.bin"), 10)
    arrive(ledger, key_of("alice", "kept.bin"), 10)
    s3.delete_object(Bucket=BUCKET, Key=key_of("alice", "kept.bin"))
    put(s3, key_of("alice", "new.bin"), 10)
    clock.now += 2 * SETTLE
    # The counters are still exact: nothing to repair, and nothing read but the listing.
    assert check.check("alice", clock.now) == Repaired()
    s3.delete_object(Bucket=BUCKET, Key=key_of("alice", "new.bin"))
    later = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(clock.now))
    deleted = record(key_of("alice", "new.bin"), created=False, time=later)
    ledger.apply_events(parse_notification(notification(deleted)))
    # Now they are off by the object whose delete was lost, and the check that the
    # deletion's touch brings finds it.
    assert ledger.usage("alice").used_bytes == 10
    clock.now += 2 * SETTLE
    assert check.check("alice", clock.now) == Repaired(1, 10)
    assert ledger.usage("alice").used_bytes == 0


def test_a_real_event_after_a_repair_still_applies(ledger: Ledger, s3: Any, clock: Clock) -> None:
    put(s3, key_of("alice"), 300)
    clock.now += 2 * SETTLE
    UserCheck(ledger, s3, BUCKET, SETTLE).check("alice", clock.now)
    later = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(clock.now + 1))
    deleted = record(key_of("alice"), created=False, time=later)
    ledger.apply_events(parse_notification(notification(deleted)))
    assert ledger.usage("alice").used_bytes == 0


# --- the incremental pass -------------------------------------------------------------------


def marks(dynamodb: Any) -> list[dict[str, Any]]:
    """Every mark of a due check, in every shard."""
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE):
        items += [item for item in page["Items"] if item["pk"]["S"].startswith("DUE#")]
    return items


def test_activity_schedules_a_check_once_the_settle_time_has_passed(
    ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    arrive(ledger, key_of("alice"), 10)
    first = usage_item(dynamodb, "alice")
    due = int(clock.start) + SETTLE
    assert int(first["checkAt"]["N"]) == due
    clock.now += 60
    arrive(ledger, key_of("alice", "b.bin"), 10)
    # A check already pending covers later touches: no second mark, checkAt stays.
    second = usage_item(dynamodb, "alice")
    assert second["checkAt"] == first["checkAt"]
    assert int(second["touchedAt"]["N"]) == int(clock.start) + 60
    [mark] = marks(dynamodb)
    assert mark["sk"]["S"] == f"{due:012d}#alice"
    # TTL removes it long after any pass has walked past it.
    assert int(mark["ttl"]["N"]) >= due + 24 * 3600


def test_a_mark_put_before_a_write_that_failed_still_brings_the_check(
    worker: Worker, queue: Queue, ledger: Ledger, dynamodb: Any, s3: Any, clock: Clock
) -> None:
    put(s3, key_of("alice", "lost.bin"), 40)

    def fail_once(**_: Any) -> None:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", fail_once)
        raise ConnectionError("the function stopped here")

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", fail_once)
    put(s3, key_of("alice"), 100)
    with pytest.raises(ConnectionError):
        ledger.apply_events(parse_notification(notification(record(key_of("alice"), size=100))))
    assert usage_item(dynamodb, "alice") == {}
    clock.now += SETTLE + WRITE_LAG_SECONDS
    worker.queue_due_checks()
    assert drain(worker, queue)["bytes_corrected"] == 140
    assert ledger.usage("alice").used_bytes == 140


def test_due_lists_the_marks_after_the_cursor_up_to_the_pass(
    ledger: Ledger, dynamodb: Any, settings: Settings
) -> None:
    table = Table(dynamodb, settings)
    subs = [f"user{index}" for index in range(40)]
    shard = int(expiry_shard(subs[0]))
    same_shard = [sub for sub in subs if int(expiry_shard(sub)) == shard]
    assert len(same_shard) >= 3
    at = 1_800_000_000
    first, second, third = same_shard[:3]
    mark_due(table, first, at)
    mark_due(table, second, at + 1)
    mark_due(table, second, at + 2)
    mark_due(table, third, at + 3)
    assert ledger.checks.due(shard, at, at + 2).subs == [second]
    assert ledger.checks.due(shard, at - 1, at + 3).subs == [first, second, third]
    page = ledger.checks.due(shard, at - 1, at + 3, limit=2)
    assert page.subs == [first, second]
    assert page.next_start is not None
    rest = ledger.checks.due(shard, at - 1, at + 3, start=page.next_start, limit=2)
    assert rest.subs == [second, third]


def test_the_hourly_pass_lists_only_users_touched_and_repairs_them(
    worker: Worker, queue: Queue, ledger: Ledger, s3: Any, dynamodb: Any, clock: Clock
) -> None:
    lists = Lists(s3)
    # Active: an upload arrived, and another one's event was lost.
    put(s3, key_of("alice"), 100)
    arrive(ledger, key_of("alice"), 100)
    put(s3, key_of("alice", "lost.bin"), 40)
    # Idle, with the same kind of drift: left to the daily audit.
    put(s3, key_of("bob"), 70)
    ledger.set_quota("bob", 5000)
    clock.now += SETTLE + WRITE_LAG_SECONDS
    worker.queue_due_checks()
    done = drain(worker, queue)
    assert lists.count == 1
    assert (done["checked"], done["bytes_corrected"]) == (1, 40)
    assert ledger.usage("alice").used_bytes == 140
    assert ledger.usage("bob").used_bytes == 0
    # The pass moved the shard's cursor: the next hour lists no one.
    clock.now += 3600
    worker.queue_due_checks()
    assert drain(worker, queue)["checked"] == 0
    assert lists.count == 1


def test_a_user_touched_again_before_the_check_is_checked_once_more_later(
    worker: Worker, queue: Queue, ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    arrive(ledger, key_of("alice"), 100)
    clock.now += SETTLE - 10
    arrive(ledger, key_of("alice", "b.bin"), 100)
    touched = clock.now
    clock.now += 10 + WRITE_LAG_SECONDS
    worker.queue_due_checks()
    assert drain(worker, queue)["checked"] == 1
    assert int(usage_item(dynamodb, "alice")["checkAt"]["N"]) == int(touched) + SETTLE
    clock.now = touched + SETTLE + WRITE_LAG_SECONDS
    worker.queue_due_checks()
    assert drain(worker, queue)["checked"] == 1


def test_a_pass_leaves_marks_younger_than_a_touchs_write_to_the_next_pass(
    worker: Worker, queue: Queue, ledger: Ledger, clock: Clock
) -> None:
    # A touch that read this check pending may not have written yet: checking now could miss it.
    arrive(ledger, key_of("alice"), 100)
    clock.now += SETTLE + WRITE_LAG_SECONDS - 1
    worker.queue_due_checks()
    assert drain(worker, queue)["checked"] == 0
    clock.now += 1
    worker.queue_due_checks()
    assert drain(worker, queue)["checked"] == 1


def test_a_pass_stopped_early_queues_the_rest_and_checks_everyone(
    worker: Worker, queue: Queue, ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("quota_uploads.drift.work.PAGE_SIZE", 5)
    subs = [f"user{index:03d}" for index in range(100)]
    for sub in subs:
        arrive(ledger, key_of(sub), 1)
    clock.now += SETTLE + WRITE_LAG_SECONDS
    worker.queue_due_checks()
    done = drain(worker, queue, stop_after_each_page=True)
    assert done["checked"] == 100
    assert done["messages"] >= 100 // 5


def test_a_swept_reservation_and_an_api_delete_schedule_checks(
    ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    ledger.grant("alice", ledger.new_upload_id(100))
    assert "checkAt" not in usage_item(dynamodb, "alice")
    clock.now += 2 * SETTLE
    assert ledger.release_expired(abort=lambda key, upload: None).reservations == 1
    assert int(usage_item(dynamodb, "alice")["checkAt"]["N"]) == int(clock.now) + SETTLE
    ledger.set_quota("bob", 5000)
    ledger.touch("bob")
    assert int(usage_item(dynamodb, "bob")["checkAt"]["N"]) == int(clock.now) + SETTLE
    ledger.touch("nobody")
    assert usage_item(dynamodb, "nobody") == {}
    due = f"{int(clock.now) + SETTLE:012d}"
    assert sorted(m["sk"]["S"] for m in marks(dynamodb)) == [f"{due}#alice", f"{due}#bob"]


# --- the daily audit ------------------------------------------------------------------------


def write_report(s3: Any, rows: list[tuple[str, int]], created: float, files: int = 2) -> str:
    """An S3 Inventory report of ``rows`` (key, size) in S3's CSV format, manifest last."""
    s3.create_bucket(Bucket=REPORTS)
    base = f"inventory/{BUCKET}/users-daily"
    listed = []
    for index in range(files):
        lines = "".join(
            f'"{BUCKET}","{quote_plus(key)}","{size}","2026-11-26T00:00:00.000Z","etag"\n'
            for key, size in rows[index::files]
        )
        body = gzip.compress(lines.encode())
        data_key = f"{base}/data/file-{index}.csv.gz"
        s3.put_object(Bucket=REPORTS, Key=data_key, Body=body)
        listed.append(
            {"key": data_key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()}
        )
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{REPORTS}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(created * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": listed,
    }
    manifest_key = f"{base}/2026-11-26T00-00Z/manifest.json"
    s3.put_object(Bucket=REPORTS, Key=manifest_key, Body=json.dumps(manifest).encode())
    return manifest_key


def manifest_notification(key: str) -> str:
    created = {"bucket": {"name": REPORTS}, "object": {"key": quote_plus(key)}}
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": created}]})


def test_the_audit_repairs_drift_anywhere_and_lists_only_suspects(
    worker: Worker,
    queue: Queue,
    ledger: Ledger,
    s3: Any,
    dynamodb: Any,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("quota_uploads.drift.work.ROWS_PER_SLICE", 3)
    objects = {
        "fine": ["1", "2", "3", "4"],
        "lostcreate": ["a", "b"],
        "lostdelete": ["a", "b"],
        "drifted": ["a"],
        "emptied": ["a"],
        "active": ["a"],
    }
    for sub, names in objects.items():
        for name in names:
            put(s3, key_of(sub, name), 10)
            arrive(ledger, key_of(sub, name), 10)
    put(s3, key_of("unknown"), 10)
    # The hourly pass checks everyone touched; from then on they are idle.
    clock.now += 2 * SETTLE
    worker.queue_due_checks()
    assert drain(worker, queue)["keys_repaired"] == 0
    # Drift without any event or touch: only the audit can see it.
    put(s3, key_of("lostcreate", "late c+ü.bin"), 10)
    s3.delete_object(Bucket=BUCKET, Key=key_of("lostdelete", "b"))
    s3.delete_object(Bucket=BUCKET, Key=key_of("emptied", "a"))
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "USER#drifted"}, "sk": {"S": "USAGE"}},
        UpdateExpression="ADD usedBytes :x",
        ExpressionAttributeValues={":x": {"N": "777"}},
    )
    stored = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    clock.now += 3600
    report = write_report(s3, [(o["Key"], o["Size"]) for o in stored], created=clock.now)
    # Changed after the report began: the incremental pass's, not the audit's.
    clock.now += 600
    s3.delete_object(Bucket=BUCKET, Key=key_of("active", "a"))
    ledger.apply_events(
        parse_notification(notification(record(key_of("active", "a"), created=False)))
    )
    lists = Lists(s3)
    queue.messages.append(manifest_notification(report))
    done = drain(worker, queue)
    assert done["failures"] == 0
    # lostcreate, lostdelete, drifted, emptied: listed once each, no one else.
    assert lists.count == 4
    # unknown, which only S3 knows of, is checked by the next hourly pass, as is active.
    clock.now += SETTLE + WRITE_LAG_SECONDS
    worker.queue_due_checks()
    hourly = drain(worker, queue)
    assert (hourly["checked"], lists.count) == (2, 6)
    expected = {
        "fine": 40,
        "lostcreate": 30,
        "lostdelete": 10,
        "drifted": 10,
        "emptied": 0,
        "unknown": 10,
        "active": 0,
    }
    assert {sub: ledger.usage(sub).used_bytes for sub in expected} == expected
    assert done["bytes_corrected"] + hourly["bytes_corrected"] == 10 + 10 + 777 + 10 + 10
    # Delivered again (SQS delivers at least once): nothing counted twice, nothing to repair.
    queue.messages.append(manifest_notification(report))
    again = drain(worker, queue)
    assert (again["keys_repaired"], again["bytes_corrected"], lists.count) == (0, 0, 6)


def test_work_that_is_not_json_or_not_known_is_refused(worker: Worker) -> None:
    for body in ("not json", '{"kind": "nope"}', '{"kind": "due"}', "[]"):
        with pytest.raises(MalformedWork):
            worker.handle(body, lambda: False)
    assert worker.handle(json.dumps({"Event": "s3:TestEvent"}), lambda: False).checked == 0


def test_due_work_round_trips_through_json() -> None:
    work = DueChecks(shard=3, until=100, after=5, start={"pk": {"S": "USER#a"}})
    assert DueChecks.model_validate_json(work.model_dump_json()) == work


def test_a_touch_between_a_checks_read_and_its_end_keeps_the_later_check(
    ledger: Ledger, dynamodb: Any, clock: Clock
) -> None:
    arrive(ledger, key_of("alice"), 10)
    clock.now += SETTLE - 100
    arrive(ledger, key_of("alice", "b.bin"), 10)
    clock.now += 101
    read_by_the_check = usage_item(dynamodb, "alice")
    clock.now += 5
    arrive(ledger, key_of("alice", "c.bin"), 10)
    latest = int(clock.now)
    ledger.checks.finish("alice", read_by_the_check, latest)
    # The check saw the second touch unsettled; the third, made meanwhile, decides the next check.
    assert int(usage_item(dynamodb, "alice")["checkAt"]["N"]) == latest + SETTLE


def test_a_check_reads_registers_only_when_the_counters_disagree_with_s3(
    ledger: Ledger, s3: Any, dynamodb: Any, clock: Clock
) -> None:
    queries: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb.Query", lambda **kwargs: queries.append("Query")
    )
    put(s3, key_of("alice"), 10)
    arrive(ledger, key_of("alice"), 10)
    clock.now += 2 * SETTLE
    check = UserCheck(ledger, s3, BUCKET, SETTLE)
    assert check.check("alice", clock.now) == Repaired()
    assert queries == []
    put(s3, key_of("alice", "lost.bin"), 5)
    assert check.check("alice", clock.now) == Repaired(1, 5)
    # Read to repair, read again to set the counters from.
    assert queries == ["Query", "Query"]


def test_a_slice_also_ends_at_its_user_bound_and_counts_every_row_once(
    worker: Worker,
    queue: Queue,
    ledger: Ledger,
    s3: Any,
    dynamodb: Any,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("quota_uploads.drift.work.USERS_PER_SLICE", 2)
    rows = [(key_of(f"user{u}", f"{i}.bin"), 10) for u in range(5) for i in range(3)]
    for key, size in rows:
        put(s3, key, size)
        arrive(ledger, key, size)
    clock.now += 2 * SETTLE
    report = write_report(s3, rows, created=clock.now, files=1)
    queue.messages.append(manifest_notification(report))
    done = drain(worker, queue)
    # Three slices of at most two users each, then the pages: nobody disagrees with S3.
    assert (done["checked"], done["failures"]) == (0, 0)
    counts = [
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"USER#user{u}"}, "sk": {"S": sk}})[
            "Item"
        ]["objectCount"]["N"]
        for u in range(5)
        for sk in ("AUDIT#users-daily/2026-11-26T00-00Z",)
    ]
    assert counts == ["3"] * 5
