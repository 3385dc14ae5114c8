import json

import pytest

from quota_uploads.s3_events import MalformedEvent, order_key, parse_notification
from tests.support.s3_notifications import notification, record

KEY = "users/alice/0123456789abcdef0123456789abcdef/my file+1.jpg"


def test_keys_are_url_decoded_and_owned() -> None:
    (event,) = parse_notification(notification(record(KEY, size=5)))
    assert event.key == KEY
    assert event.owner.sub == "alice"
    assert event.owner.upload_id == "0123456789abcdef0123456789abcdef"
    assert (event.exists, event.size) == (True, 5)


@pytest.mark.parametrize(
    "name",
    [
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
    ],
)
def test_every_kind_of_create_counts(name: str) -> None:
    (event,) = parse_notification(notification(record(KEY, size=7, name=name)))
    assert event.exists
    assert event.size == 7


def test_a_delete_carries_no_size_and_needs_none() -> None:
    (event,) = parse_notification(notification(record(KEY, created=False)))
    assert (event.exists, event.size) == (False, 0)


def test_the_test_event_holds_nothing() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert parse_notification(body) == []


def test_keys_outside_the_scheme_are_skipped() -> None:
    assert parse_notification(notification(record("elsewhere/file.txt", size=1))) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "{}",
        json.dumps({"Records": "x"}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"Records": [{**record(KEY, size=1), "eventName": "ObjectRestore:Post"}]}),
        json.dumps({"Records": [{**record(KEY), "s3": {"object": {"key": KEY, "size": "big"}}}]}),
        json.dumps({"Records": [record(KEY, size=-1)]}),
    ],
)
def test_anything_else_is_malformed(body: str) -> None:
    with pytest.raises(MalformedEvent):
        parse_notification(body)


def test_sequencers_of_different_lengths_order_as_s3_documents() -> None:
    # S3: right-pad the shorter sequencer with zeros, then compare as strings.
    assert order_key("0055AED6DCD90281E5", "") < order_key("0055AED6DCD90281E6", "")
    assert order_key("0055AED6DCD90281E5", "") < order_key("0055AED6DCD90281E500001", "")
    assert order_key("0055AED6DCD90281E5", "") == order_key("0055aed6dcd90281e500", "")


def test_without_a_sequencer_event_time_orders() -> None:
    early = order_key(None, "2026-11-24T10:00:00.000Z")
    late = order_key(None, "2026-11-24T10:00:00.001Z")
    assert early < late
