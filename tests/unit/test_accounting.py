from hypothesis import given
from hypothesis import strategies as st

from quota_uploads.accounting import ObjectState, newest, plan_user_changes
from quota_uploads.keys import ObjectOwner, UploadTerms, new_upload_id
from quota_uploads.s3_events import ObjectEvent

ENDS = 1_800_000_000
UPLOAD = new_upload_id(UploadTerms(size=100, expires_at=ENDS, multipart=False))
KEY = f"users/alice/{UPLOAD}/f.bin"


def event(order: int, *, exists: bool = True, size: int = 10, key: str = KEY) -> ObjectEvent:
    upload = key.split("/")[2] if key.count("/") == 3 else None
    return ObjectEvent(
        key=key,
        owner=ObjectOwner("alice", upload),
        exists=exists,
        size=size if exists else 0,
        etag=f"e{size}" if exists else "",
        order=f"s{order:064d}",
        event_time="",
    )


def test_a_create_charges_its_actual_size_and_releases_its_reservation() -> None:
    changes = plan_user_changes("alice", [event(1, size=70)], {}, {ENDS})
    assert (changes.used_delta, changes.reserved_delta, changes.object_count_delta) == (70, -100, 1)


def test_only_the_first_event_of_an_upload_releases_its_reservation() -> None:
    first = plan_user_changes("alice", [event(2, exists=False), event(1)], {}, {ENDS})
    assert (first.used_delta, first.reserved_delta) == (0, -100)
    stored = {KEY: first.objects[0].after}
    assert plan_user_changes("alice", [event(3, size=5)], stored, {ENDS}).reserved_delta == 0


def test_a_reservation_whose_bucket_was_swept_is_not_released_again() -> None:
    changes = plan_user_changes("alice", [event(1, size=70)], {}, set())
    assert (changes.used_delta, changes.reserved_delta) == (70, 0)


def test_a_delete_subtracts_the_stored_size() -> None:
    stored = {KEY: ObjectState.of(event(1, size=70))}
    changes = plan_user_changes("alice", [event(2, exists=False)], stored, {})
    assert (changes.used_delta, changes.object_count_delta) == (-70, -1)


def test_an_old_event_after_a_newer_one_changes_nothing() -> None:
    stored = {KEY: ObjectState.of(event(2, exists=False))}
    assert plan_user_changes("alice", [event(1, size=70)], stored, {}).is_empty


def test_a_create_and_delete_with_one_order_resolve_to_the_delete() -> None:
    assert newest(None, [event(1, exists=False), event(1)]) == ObjectState.of(
        event(1, exists=False)
    )


def test_an_overwrite_charges_the_difference() -> None:
    stored = {KEY: ObjectState.of(event(1, size=70))}
    changes = plan_user_changes("alice", [event(2, size=30)], stored, {})
    assert (changes.used_delta, changes.object_count_delta) == (-40, 0)


events = st.lists(
    st.builds(
        event,
        st.integers(0, 20),
        exists=st.booleans(),
        size=st.integers(0, 1000),
        key=st.sampled_from([KEY, "users/alice/other.bin"]),
    ),
    max_size=12,
)


@given(events, st.randoms(use_true_random=False), st.integers(1, 4))
def test_any_order_and_any_batching_reach_the_same_usage(
    history: list[ObjectEvent], random: object, batches: int
) -> None:
    def apply_all(batches_of_events: list[list[ObjectEvent]]) -> int:
        stored: dict[str, ObjectState] = {}
        used = 0
        for batch in batches_of_events:
            changes = plan_user_changes("alice", batch, stored, {})
            used += changes.used_delta
            stored.update({c.key: c.after for c in changes.objects})
        return used

    reference = apply_all([history])
    replay = history + history[: len(history) // 2]
    random.shuffle(replay)  # type: ignore[attr-defined]
    split = [replay[i::batches] for i in range(batches)]
    assert apply_all(split) == reference
    truth = {}
    for e in sorted(history, key=lambda e: ObjectState.of(e).stamp):
        truth[e.key] = e.size if e.exists else 0
    assert reference == sum(truth.values())
