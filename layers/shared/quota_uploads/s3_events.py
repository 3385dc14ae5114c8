"""Turning S3 event notifications into object events the ledger can apply."""

from __future__ import annotations

import json
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from quota_uploads.keys import ObjectOwner, owner_of

# S3 sequencers are hex strings of varying length; right-padded to one width they compare
# lexicographically in event order, in Python and in DynamoDB conditions alike.
_SEQUENCER_WIDTH = 64


class MalformedEvent(ValueError):
    """A message that is not an S3 event notification this service can apply."""


class ObjectEvent(NamedTuple):
    """One change to one object: it now exists with ``size`` bytes, or it is gone.

    A NamedTuple, not a frozen dataclass: a batch makes one per record, and tuples are built
    several times faster.
    """

    key: str
    owner: ObjectOwner
    exists: bool
    size: int
    etag: str
    order: str
    event_time: str


def order_key(sequencer: str | None, event_time: str) -> str:
    """A string that sorts events for one key in the order S3 applied them.

    Real S3 sends a ``sequencer``; where it is missing (moto) the event time is the best order
    there is. A bucket sends one kind or the other, so the two never meet for one key.
    """
    if sequencer:
        return "s" + sequencer.upper().ljust(_SEQUENCER_WIDTH, "0")
    return "t" + event_time


def parse_notification(body: str) -> list[ObjectEvent]:
    """The object events in one SQS message body; an ``s3:TestEvent`` holds none.

    Records for keys outside the ``users/`` scheme are dropped: no quota owns them.
    Raises MalformedEvent for anything that is not an S3 notification.
    """
    try:
        message = json.loads(body)
    except (TypeError, ValueError):
        raise MalformedEvent("message body is not JSON") from None
    if not isinstance(message, dict):
        raise MalformedEvent("message body is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("message has no Records list")
    events = []
    for record in records:
        event = _parse_record(record)
        if event is not None:
            events.append(event)
    return events


def _parse_record(record: Any) -> ObjectEvent | None:
    try:
        name: str = record["eventName"]
        obj = record["s3"]["object"]
        raw_key: str = obj["key"]
        # Keys arrive form-encoded; most need no decoding, and unquote_plus is the costliest step.
        key = unquote_plus(raw_key) if "%" in raw_key or "+" in raw_key else raw_key
        event_time: str = record["eventTime"]
        sequencer = obj.get("sequencer")
        exists = name.startswith("ObjectCreated:")
        if not exists and not name.startswith("ObjectRemoved:"):
            raise MalformedEvent(f"unexpected event {name!r}")
        size = int(obj["size"]) if exists else 0
        etag = str(obj.get("eTag", "")) if exists else ""
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedEvent(f"record is not an S3 object event: {error!r}") from None
    if (
        not isinstance(event_time, str)
        or size < 0
        or (sequencer and not isinstance(sequencer, str))
    ):
        raise MalformedEvent("record has an invalid eventTime, size or sequencer")
    owner = owner_of(key)
    if owner is None:
        return None
    return ObjectEvent(key, owner, exists, size, etag, order_key(sequencer, event_time), event_time)
