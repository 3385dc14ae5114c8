"""The ledger against moto's DynamoDB: grants, events, quotas and expiry.

Each test runs twice: with botocore against moto in-process, and with the hand-written client
the functions use in production against a moto server. moto is not atomic under concurrency,
so races are proven against DynamoDB Local elsewhere; here every call is sequential and the
assertions are about arithmetic and idempotency. Tests that reach into botocore's client
(counting or failing its calls) use botocore only.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quota_uploads.config import Settings
from quota_uploads.keys import upload_terms
from quota_uploads.ledger import (
    InsufficientQuota,
    Ledger,
    MultipartTarget,
    TooManyCancelled,
    TooManyUploads,
)
from quota_uploads.ledger.table import (
    GRANT_SLOTS,
    MAX_CANCEL_MARKS,
    MAX_TRANSACTION_ITEMS,
    bucket_width,
    buckets,
    cancel_marks,
    grant_slot,
)
from quota_uploads.s3_events import parse_notification
from tests.conftest import QUOTA, TABLE
from tests.support.dynamodb import (
    create_ledger_table,
    fast_local_client,
    item_size,
    reset_moto,
    running_moto,
)
from tests.support.s3_notifications import notification, record

LIFETIME = 900 + 120
# A reservation ends at the end of its expiry bucket: never before its expiry, at most this after.
WIDTH = bucket_width(LIFETIME)


START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


def hand_written_client(endpoint: str, template: dict[str, Any]) -> Any:
    """The production client against a fresh table on the moto server."""
    reset_moto(endpoint)
    create_ledger_table(endpoint, template, TABLE)
    return fast_local_client(endpoint)


@pytest.fixture(params=["botocore", "hand-written"])
def ledger(
    request: pytest.FixtureRequest, settings: Settings, clock: Clock, template: dict[str, Any]
) -> Ledger:
    if request.param == "botocore":
        client = request.getfixturevalue("dynamodb")
    else:
        client = hand_written_client(request.getfixturevalue("moto_server"), template)
    return Ledger(client, settings, clock=clock)


@pytest.fixture
def botocore_ledger(dynamodb: Any, settings: Settings, clock: Clock) -> Ledger:
    return Ledger(dynamodb, settings, clock=clock)


_ids = itertools.count()


def upload_id() -> str:
    return f"{next(_ids):032x}"


def key_of(sub: str, upload: str, name: str = "f.bin") -> str:
    return f"users/{sub}/{upload}/{name}"


def sweep(ledger: Ledger) -> int:
    """Runs the sweeper; the number of reservations it released."""
    return ledger.release_expired(abort=lambda key, s3_upload_id: None).reservations


def ends(upload: str) -> int:
    terms = upload_terms(upload)
    assert terms is not None
    return terms.expires_at


def apply(ledger: Ledger, *records: dict[str, Any]) -> None:
    assert ledger.apply_events(parse_notification(notification(*records))).failed == set()


def test_a_grant_reserves_the_declared_bytes(ledger: Ledger) -> None:
    usage = ledger.grant("alice", ledger.new_upload_id(600))
    assert (usage.used_bytes, usage.reserved_bytes, usage.available_bytes) == (0, 600, 400)


def test_a_grant_retried_after_a_lost_answer_is_answered_not_counted_twice(
    ledger: Ledger,
) -> None:
    upload = ledger.new_upload_id(600)
    first = ledger.grant("alice", upload)
    # Another grant lands before the retry; it marks another slot (one in 8 would share it).
    other = ledger.new_upload_id(100)
    while grant_slot(other)[0] == grant_slot(upload)[0]:
        other = ledger.new_upload_id(100)
    ledger.grant("alice", other)
    assert ledger.grant("alice", upload) == ledger.usage("alice")
    assert first.reserved_bytes == 600
    assert ledger.usage("alice").reserved_bytes == 700


def test_a_grant_is_one_dynamodb_request(botocore_ledger: Ledger, dynamodb: Any) -> None:
    sent: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: sent.append(model.name)
    )
    botocore_ledger.grant("alice", botocore_ledger.new_upload_id(600))
    with pytest.raises(InsufficientQuota):
        botocore_ledger.grant("alice", botocore_ledger.new_upload_id(600))
    assert sent == ["UpdateItem", "UpdateItem"]


def test_a_batch_costs_one_read_and_one_write_per_user(
    botocore_ledger: Ledger, dynamodb: Any
) -> None:
    sent: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: sent.append(model.name)
    )
    records = [record(f"users/u{n % 3}/f{n}.bin", size=1) for n in range(30)]
    apply(botocore_ledger, *records)
    # And the mark of each user's drift check, once per check.
    assert sorted(sent) == ["BatchGetItem"] * 2 + ["PutItem"] * 3 + ["TransactWriteItems"] * 3
    sent.clear()
    apply(botocore_ledger, *(record(f"users/u{n % 3}/g{n}.bin", size=1) for n in range(30)))
    assert sorted(sent) == ["BatchGetItem"] * 2 + ["TransactWriteItems"] * 3


def test_a_grant_that_would_pass_the_quota_is_refused_with_the_numbers(ledger: Ledger) -> None:
    ledger.grant("alice", ledger.new_upload_id(600))
    with pytest.raises(InsufficientQuota) as refused:
        ledger.grant("alice", ledger.new_upload_id(401))
    refusal = refused.value
    assert (refusal.used_bytes, refusal.reserved_bytes, refusal.quota_bytes) == (0, 600, QUOTA)
    assert (refusal.requested_bytes, refusal.available_bytes) == (401, 400)
    assert ledger.usage("alice").reserved_bytes == 600


def test_a_grant_can_fill_the_quota_exactly(ledger: Ledger) -> None:
    ledger.grant("alice", ledger.new_upload_id(600))
    assert ledger.grant("alice", ledger.new_upload_id(400)).available_bytes == 0
    with pytest.raises(InsufficientQuota):
        ledger.grant("alice", ledger.new_upload_id(1))


def test_a_file_larger_than_the_default_quota_is_refused_for_a_new_user(ledger: Ledger) -> None:
    with pytest.raises(InsufficientQuota) as refused:
        ledger.grant("bob", ledger.new_upload_id(QUOTA + 1))
    assert refused.value.used_bytes == 0
    assert ledger.usage("bob").reserved_bytes == 0


def test_users_do_not_share_a_quota(ledger: Ledger) -> None:
    ledger.grant("alice", ledger.new_upload_id(QUOTA))
    assert ledger.grant("bob", ledger.new_upload_id(QUOTA)).reserved_bytes == QUOTA


def test_a_per_user_quota_overrides_the_default_and_can_be_removed(ledger: Ledger) -> None:
    ledger.grant("alice", ledger.new_upload_id(800))
    ledger.set_quota("alice", 3000)
    assert ledger.grant("alice", ledger.new_upload_id(2200)).available_bytes == 0
    with pytest.raises(InsufficientQuota) as refused:
        ledger.grant("alice", ledger.new_upload_id(1))
    assert refused.value.quota_bytes == 3000
    ledger.set_quota("alice", None)
    usage = ledger.usage("alice")
    assert (usage.quota_bytes, usage.reserved_bytes, usage.available_bytes) == (QUOTA, 3000, 0)


def test_lowering_a_quota_below_usage_refuses_even_empty_files(ledger: Ledger) -> None:
    ledger.grant("alice", ledger.new_upload_id(500))
    ledger.set_quota("alice", 100)
    with pytest.raises(InsufficientQuota) as refused:
        ledger.grant("alice", ledger.new_upload_id(0))
    usage = refused.value.usage
    assert (usage.reserved_bytes, usage.quota_bytes, usage.available_bytes) == (500, 100, 0)


def test_too_many_open_uploads_are_refused(dynamodb: Any, settings: Settings) -> None:
    ledger = Ledger(dynamodb, dataclasses.replace(settings, max_open_uploads=2))
    ledger.grant("alice", ledger.new_upload_id(1))
    ledger.grant("alice", ledger.new_upload_id(1))
    with pytest.raises(TooManyUploads):
        ledger.grant("alice", ledger.new_upload_id(1))


def test_an_arrival_turns_the_reservation_into_usage_at_the_actual_size(ledger: Ledger) -> None:
    upload = ledger.new_upload_id(600)
    ledger.grant("alice", upload)
    apply(ledger, record(key_of("alice", upload), size=450))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes, usage.object_count) == (450, 0, 1)
    assert ledger.grant("alice", ledger.new_upload_id(550)).available_bytes == 0


def test_redelivered_events_count_once(ledger: Ledger) -> None:
    upload = ledger.new_upload_id(600)
    ledger.grant("alice", upload)
    created = record(key_of("alice", upload), size=600)
    apply(ledger, created, created)
    apply(ledger, created)
    assert (ledger.usage("alice").used_bytes, ledger.usage("alice").reserved_bytes) == (600, 0)


def test_a_delete_frees_the_stored_size_even_when_it_arrives_first(ledger: Ledger) -> None:
    upload = ledger.new_upload_id(300)
    key = key_of("alice", upload)
    ledger.grant("alice", upload)
    deleted = record(key, created=False, sequencer="0000000000000002")
    apply(ledger, deleted)
    apply(ledger, record(key, size=300, sequencer="0000000000000001"))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes, usage.object_count) == (0, 0, 0)


def test_multipart_completion_reported_twice_counts_once(ledger: Ledger) -> None:
    upload = ledger.new_upload_id(900)
    key = key_of("alice", upload)
    ledger.grant("alice", upload)
    put = record(key, size=900, etag="abc-2", name="ObjectCreated:Put")
    complete = record(key, size=900, etag="abc-2", name="ObjectCreated:CompleteMultipartUpload")
    apply(ledger, put)
    apply(ledger, complete)
    assert ledger.usage("alice").used_bytes == 900


def test_objects_without_a_grant_or_larger_than_granted_are_charged_in_full(
    ledger: Ledger,
) -> None:
    upload = ledger.new_upload_id(100)
    ledger.grant("alice", upload)
    apply(
        ledger, record(key_of("alice", upload), size=700), record("users/alice/copy.bin", size=500)
    )
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes, usage.available_bytes) == (1200, 0, 0)
    with pytest.raises(InsufficientQuota):
        ledger.grant("alice", ledger.new_upload_id(0))


def test_expired_reservations_are_released_at_their_end_and_live_ones_kept(
    ledger: Ledger, clock: Clock
) -> None:
    granted_at = clock.now
    first = ledger.new_upload_id(300)
    ledger.grant("alice", first)
    clock.now += WIDTH
    second = ledger.new_upload_id(200)
    ledger.grant("alice", second)
    assert granted_at + LIFETIME <= ends(first) < granted_at + LIFETIME + WIDTH
    clock.now = ends(first) - 1
    assert sweep(ledger) == 0
    clock.now = ends(first)
    assert sweep(ledger) == 1
    assert ledger.usage("alice").reserved_bytes == 200
    assert sweep(ledger) == 0
    clock.now = ends(second)
    assert sweep(ledger) == 1
    assert ledger.usage("alice").reserved_bytes == 0
    assert sweep(ledger) == 0


def test_a_short_reservation_opened_beside_a_multipart_one_ends_on_its_own_time(
    ledger: Ledger, clock: Clock
) -> None:
    long = ledger.new_upload_id(300, multipart=True)
    ledger.grant("alice", long)
    short = ledger.new_upload_id(200)
    ledger.grant("alice", short)
    clock.now = ends(short)
    assert sweep(ledger) == 1
    assert ledger.usage("alice").reserved_bytes == 300
    clock.now = ends(long)
    assert sweep(ledger) == 1
    assert ledger.usage("alice").reserved_bytes == 0


def test_an_upload_landing_after_its_reservation_expired_is_charged_once(
    ledger: Ledger, clock: Clock
) -> None:
    upload = ledger.new_upload_id(300)
    ledger.grant("alice", upload)
    clock.now = ends(upload)
    assert sweep(ledger) == 1
    apply(ledger, record(key_of("alice", upload), size=300))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (300, 0)
    assert sweep(ledger) == 0


def test_a_failed_user_does_not_block_others(
    botocore_ledger: Ledger, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    from botocore.exceptions import ClientError

    real = dynamodb.transact_write_items

    def failing_for_bob(**kwargs: Any) -> Any:
        if any("USER#bob" in str(item) for item in kwargs["TransactItems"]):
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(dynamodb, "transact_write_items", failing_for_bob)
    events = parse_notification(
        notification(record("users/alice/a.bin", size=5), record("users/bob/b.bin", size=7))
    )
    assert botocore_ledger.apply_events(events).failed == {"bob"}
    assert botocore_ledger.usage("alice").used_bytes == 5
    assert botocore_ledger.usage("bob").used_bytes == 0


def test_a_crash_between_two_transactions_leaves_no_half_write_and_redelivery_completes(
    botocore_ledger: Ledger, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    """More objects than a transaction holds are written in several; each is whole on its own."""
    sizes = [n + 1 for n in range(MAX_TRANSACTION_ITEMS + 50)]
    batch = [record(key_of("alice", upload_id()), size=size) for size in sizes]
    real = dynamodb.transact_write_items
    calls = itertools.count()

    def crashing_on_the_second(**kwargs: Any) -> Any:
        if next(calls) == 1:
            raise RuntimeError("the process died here")
        return real(**kwargs)

    monkeypatch.setattr(dynamodb, "transact_write_items", crashing_on_the_second)
    with pytest.raises(RuntimeError):
        botocore_ledger.apply_events(parse_notification(notification(*batch)))

    written = [state for state in botocore_ledger.registers("alice").values() if state.exists]
    usage = botocore_ledger.usage("alice")
    assert 0 < len(written) < len(sizes)
    assert (usage.used_bytes, usage.object_count) == (sum(s.size for s in written), len(written))

    monkeypatch.setattr(dynamodb, "transact_write_items", real)
    apply(botocore_ledger, *batch)
    usage = botocore_ledger.usage("alice")
    assert (usage.used_bytes, usage.object_count) == (sum(sizes), len(sizes))


# A history is what happened in the bucket; events are what S3 said about it, delivered
# at least once and in any order, interleaved with expiry sweeps.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upload"), st.integers(0, 400), st.integers(-50, 50), st.booleans()),
        st.tuples(st.just("delete"), st.integers(0, 9)),
        st.tuples(st.just("overwrite"), st.integers(0, 9), st.integers(0, 300)),
        st.tuples(st.just("multipart"), st.integers(1, 300)),
        st.tuples(st.just("grant_only"), st.integers(0, 300)),
    ),
    max_size=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations, st.randoms(use_true_random=False), st.integers(1, 4))
def test_any_history_delivered_in_any_order_leaves_the_true_usage(
    ledger: Ledger,
    clock: Clock,
    history: list[tuple[Any, ...]],
    shuffle: random.Random,
    batches: int,
) -> None:
    sub = f"u{next(_ids)}"
    bucket: dict[str, int] = {}
    delivered: list[dict[str, Any]] = []
    sequence = itertools.count(1)

    def emit(key: str, size: int | None, name: str | None = None) -> None:
        seq = f"{next(sequence):016X}"
        delivered.append(record(key, created=size is not None, size=size, sequencer=seq, name=name))

    for operation in history:
        kind = operation[0]
        if kind in ("upload", "multipart", "grant_only"):
            declared = operation[1]
            upload = ledger.new_upload_id(declared)
            try:
                ledger.grant(sub, upload)
            except InsufficientQuota:
                continue
            key = key_of(sub, upload)
            if kind == "upload" and operation[3]:
                bucket[key] = max(0, declared + operation[2])
                emit(key, bucket[key])
            elif kind == "multipart":
                bucket[key] = declared
                emit(key, declared, "ObjectCreated:Put")
                emit(key, declared, "ObjectCreated:CompleteMultipartUpload")
        elif bucket:
            key = sorted(bucket)[operation[1] % len(bucket)]
            if kind == "delete":
                del bucket[key]
                emit(key, None)
            else:
                bucket[key] = operation[2]
                emit(key, bucket[key])

    replay = delivered + shuffle.sample(delivered, len(delivered) // 2)
    shuffle.shuffle(replay)
    for index in range(batches):
        batch = replay[index::batches]
        assert ledger.apply_events(parse_notification(notification(*batch))).failed == set()
        clock.now += LIFETIME / batches
        sweep(ledger)
    clock.now += LIFETIME + WIDTH
    sweep(ledger)

    usage = ledger.usage(sub)
    assert usage.used_bytes == sum(bucket.values())
    assert usage.object_count == len(bucket)
    assert usage.reserved_bytes == 0


def test_the_usage_item_stays_under_one_write_unit_however_many_uploads_are_open(
    dynamodb: Any, settings: Settings, clock: Clock
) -> None:
    """The worst case: the longest user id holding large numbers, every grant slot taken, and
    as many buckets of both kinds as stay open with the sweeper running every minute."""
    sub = "x" * 128
    ledger = Ledger(dynamodb, settings, clock=clock)
    ledger.set_quota(sub, 10**17)
    multipart = settings.multipart_lifetime_seconds
    for _ in range(multipart // bucket_width(multipart) + 1):
        ledger.grant(sub, ledger.new_upload_id(5 * 1024**4, multipart=True))
        clock.now += bucket_width(multipart)
    for _ in range(LIFETIME // 60 + 3):
        for _ in range(GRANT_SLOTS):
            ledger.grant(sub, ledger.new_upload_id(5 * 1024**3))
        sweep(ledger)
        clock.now += 60
    item = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"USER#{sub}"}, "sk": {"S": "USAGE"}}
    )["Item"]
    assert len(buckets(item)) >= 16
    assert item_size(item) <= 1024


def multipart_upload(ledger: Ledger, sub: str, size: int) -> tuple[str, MultipartTarget]:
    upload = ledger.new_upload_id(size, multipart=True)
    target = MultipartTarget(key_of(sub, upload), f"s3-{upload}", 5)
    ledger.grant(sub, upload, target)
    return upload, target


def test_a_completed_multipart_upload_ends_its_reservation_and_its_record(ledger: Ledger) -> None:
    upload, target = multipart_upload(ledger, "alice", 900)
    found = ledger.reservation("alice", upload)
    assert found is not None
    assert (found.bytes, found.multipart) == (900, target)
    apply(ledger, record(target.key, size=850))
    assert ledger.reservation("alice", upload) is None
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (850, 0)


def test_an_aborted_multipart_upload_is_released_once(ledger: Ledger) -> None:
    upload, _ = multipart_upload(ledger, "alice", 900)
    found = ledger.reservation("alice", upload)
    assert found is not None
    assert ledger.release(found)
    assert not ledger.release(found)
    assert ledger.reservation("alice", upload) is None
    assert ledger.usage("alice").reserved_bytes == 0


def test_an_expired_multipart_upload_is_aborted_in_s3_then_forgotten(
    ledger: Ledger, clock: Clock
) -> None:
    upload, target = multipart_upload(ledger, "alice", 900)
    found = ledger.reservation("alice", upload)
    assert found is not None
    aborted: list[tuple[str, str]] = []
    clock.now = ends(upload)
    swept = ledger.release_expired(abort=lambda key, s3_id: aborted.append((key, s3_id)))
    assert (swept.reservations, swept.uploads_aborted, swept.failures) == (1, 1, 0)
    assert aborted == [(target.key, target.s3_upload_id)]
    assert ledger.reservation("alice", upload) is None
    assert not ledger.release(found)
    assert ledger.usage("alice").reserved_bytes == 0


def test_a_multipart_upload_aborted_before_its_object_arrives_is_released_once(
    ledger: Ledger,
) -> None:
    upload, target = multipart_upload(ledger, "alice", 300)
    multipart_upload(ledger, "alice", 200)
    found = ledger.reservation("alice", upload)
    assert found is not None
    assert ledger.release(found)
    apply(ledger, record(target.key, size=300))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (300, 200)


def test_an_abort_landing_between_an_arrivals_read_and_write_is_seen_on_the_retry(
    botocore_ledger: Ledger, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    ledger = botocore_ledger
    upload, target = multipart_upload(ledger, "alice", 300)
    multipart_upload(ledger, "alice", 200)
    found = ledger.reservation("alice", upload)
    assert found is not None
    real = dynamodb.batch_get_item
    reads = itertools.count()

    def abort_after_the_first_read(**kwargs: Any) -> Any:
        answer = real(**kwargs)
        if next(reads) == 1:
            assert ledger.release(found)
        return answer

    monkeypatch.setattr(dynamodb, "batch_get_item", abort_after_the_first_read)
    apply(ledger, record(target.key, size=300))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (300, 200)


def marks_and_buckets(ledger: Ledger, sub: str) -> tuple[dict[str, int], set[int]]:
    item = ledger.usage_item(sub)
    return cancel_marks(item), set(buckets(item))


def test_a_cancelled_single_put_is_released_at_once_and_still_charged_if_it_arrives(
    ledger: Ledger,
) -> None:
    upload = ledger.new_upload_id(600)
    other = ledger.new_upload_id(300)
    ledger.grant("alice", upload)
    ledger.grant("alice", other)
    assert ledger.cancel("alice", upload)
    assert not ledger.cancel("alice", upload)
    assert ledger.usage("alice").reserved_bytes == 300
    # The URL still works: the object lands, is charged, and ends nothing a second time.
    apply(ledger, record(key_of("alice", upload), size=600))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (600, 300)
    assert marks_and_buckets(ledger, "alice")[0] == {}
    apply(ledger, record(key_of("alice", other), size=300))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (900, 0)


def test_an_upload_that_arrived_or_is_not_a_single_put_cannot_be_cancelled(
    ledger: Ledger,
) -> None:
    upload = ledger.new_upload_id(600)
    ledger.grant("alice", upload)
    apply(ledger, record(key_of("alice", upload), size=600))
    assert not ledger.cancel("alice", upload)
    assert not ledger.cancel("bob", upload)
    multipart, _ = multipart_upload(ledger, "alice", 100)
    assert not ledger.cancel("alice", multipart)
    assert not ledger.cancel("alice", "not an upload id")
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (600, 100)


def test_a_cancel_mark_goes_with_its_bucket_when_the_object_never_comes(
    ledger: Ledger, clock: Clock
) -> None:
    upload = ledger.new_upload_id(600)
    ledger.grant("alice", upload)
    ledger.cancel("alice", upload)
    clock.now = ends(upload)
    sweep(ledger)
    assert marks_and_buckets(ledger, "alice") == ({}, set())
    apply(ledger, record(key_of("alice", upload), size=600))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (600, 0)


def test_a_cancel_mark_goes_when_the_others_arrivals_empty_its_bucket(ledger: Ledger) -> None:
    cancelled, other = ledger.new_upload_id(100), ledger.new_upload_id(200)
    ledger.grant("alice", cancelled)
    ledger.grant("alice", other)
    ledger.cancel("alice", cancelled)
    apply(ledger, record(key_of("alice", other), size=200))
    assert marks_and_buckets(ledger, "alice") == ({}, set())


def test_cancel_marks_are_bounded(ledger: Ledger) -> None:
    uploads = [ledger.new_upload_id(1) for _ in range(MAX_CANCEL_MARKS + 1)]
    for upload in uploads:
        ledger.grant("alice", upload)
    for upload in uploads[:-1]:
        assert ledger.cancel("alice", upload)
    with pytest.raises(TooManyCancelled):
        ledger.cancel("alice", uploads[-1])
    assert ledger.usage("alice").reserved_bytes == 1


def test_a_cancel_landing_between_an_arrivals_read_and_write_is_seen_on_the_retry(
    botocore_ledger: Ledger, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    ledger = botocore_ledger
    upload, other = ledger.new_upload_id(300), ledger.new_upload_id(200)
    ledger.grant("alice", upload)
    ledger.grant("alice", other)
    real = dynamodb.batch_get_item
    reads = itertools.count()

    def cancel_after_the_first_read(**kwargs: Any) -> Any:
        answer = real(**kwargs)
        if next(reads) == 1:
            assert ledger.cancel("alice", upload)
        return answer

    monkeypatch.setattr(dynamodb, "batch_get_item", cancel_after_the_first_read)
    apply(ledger, record(key_of("alice", upload), size=300))
    usage = ledger.usage("alice")
    assert (usage.used_bytes, usage.reserved_bytes) == (300, 200)
