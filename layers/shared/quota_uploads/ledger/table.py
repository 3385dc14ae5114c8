"""The ledger table's item layout, and the plumbing every part of the ledger shares.

Items (pk ``USER#<sub>``):

- ``USAGE``: the user's counters. Reserved bytes are kept per expiry bucket, as ``r<end>``
  (bytes) and ``n<end>`` (uploads) where ``<end>`` is when the bucket's reservations end, in
  epoch seconds. Buckets are a fixed fraction of a reservation's lifetime wide, so the item holds
  a bounded number of them however many uploads are open, and every write to it costs the same.
  ``expiresAt`` is the earliest bucket end, which puts the item in the sweeper's sparse index;
  ``expiryShard`` (fixed per user) spreads that index over partitions. ``g0``..``g7`` remember
  the last grants by a prefix of their upload id, so a retried grant is recognised.
- ``RES#<uploadId>``: an open multipart upload (its S3 id and key), also in the index by expiry,
  so the sweeper can abort it in S3. Its bytes are in the usage item's buckets like any other.
- ``OBJ#<key>``: one register per object (see ``accounting``).

A single PUT cancelled before its object arrived leaves ``x<random part of its upload id>`` on
the usage item, valued at its bucket's end, so the object, should it still arrive, is charged
without releasing the reservation twice; the mark goes with the arrival or with the bucket.
"""

from __future__ import annotations

import random
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quota_uploads.config import Settings
from quota_uploads.keys import USAGE_SK, sub_of_pk, upload_sk, user_pk
from quota_uploads.ledger.model import UsageState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]

EXPIRY_INDEX = "ExpiringItems"
EXPIRY_SHARDS = 8
# Buckets per reservation lifetime: a reservation ends at most a lifetime / 8 after its expiry,
# and the usage item holds at most 9 buckets per kind of upload (single PUT, multipart).
BUCKETS_PER_LIFETIME = 8
GRANT_SLOTS = 8
GRANT_TAG_DIGITS = 8
ATTEMPTS = 8
MAX_TRANSACTION_ITEMS = 100

_BUCKET = re.compile(r"([rn])(\d{1,12})")
_CANCEL_MARK = re.compile(r"x[0-9a-f]{11}")
# Marks are few and short-lived (a reservation's lifetime at most): this keeps the usage item,
# and every write to it, within one write unit however a client cancels.
MAX_CANCEL_MARKS = 16


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def number(item: Item, name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value else 0


# Ending reservations, for an abort and for the sweeper alike: their bytes leave reserved and
# committed and return to headroom. Values from ``freed``.
FREE_RESERVATIONS = (
    "reservedBytes :freed, committedBytes :freed, headroomBytes :headroom, openReservations :ended"
)


def freed(size: int, reservations: int) -> dict[str, Any]:
    """The values of ``FREE_RESERVATIONS`` that end ``reservations`` holding ``size`` bytes."""
    return {":freed": n(-size), ":headroom": n(size), ":ended": n(-reservations)}


def record_key(sub: str, upload_id: str) -> Item:
    """The key of a multipart upload's record."""
    return {"pk": s(user_pk(sub)), "sk": s(upload_sk(upload_id))}


def bucket_names(end: int) -> tuple[str, str]:
    """The attributes holding a bucket's reserved bytes and its number of uploads."""
    return f"r{end}", f"n{end}"


@dataclass(frozen=True)
class Bucket:
    end: int
    bytes: int
    count: int


def buckets(item: Item) -> dict[int, Bucket]:
    """The usage item's reservation buckets by end time."""
    found: dict[int, list[int]] = {}
    for name, value in item.items():
        match = _BUCKET.fullmatch(name)
        if match:
            slot = found.setdefault(int(match[2]), [0, 0])
            slot[match[1] == "n"] = int(value["N"])
    return {end: Bucket(end, b, c) for end, (b, c) in found.items()}


def bucket_width(lifetime_seconds: int) -> int:
    return max(1, -(-lifetime_seconds // BUCKETS_PER_LIFETIME))


def bucket_end(expires_at: int, lifetime_seconds: int) -> int:
    """The end of the bucket a reservation expiring at ``expires_at`` joins: never earlier."""
    width = bucket_width(lifetime_seconds)
    return -(-expires_at // width) * width


def expiry_shard(sub: str) -> str:
    return str(zlib.crc32(sub.encode()) % EXPIRY_SHARDS)


def cancel_mark(upload_id: str) -> str:
    """The usage item attribute recording that a single PUT was cancelled before it arrived."""
    return f"x{upload_id[:11]}"


def cancel_marks(item: Item) -> dict[str, int]:
    """The usage item's cancel marks, each with the end of its upload's bucket."""
    return {name: int(value["N"]) for name, value in item.items() if _CANCEL_MARK.fullmatch(name)}


def grant_slot(upload_id: str) -> tuple[str, str]:
    """Where a grant leaves its mark, and the mark: a prefix of its random upload id."""
    return f"g{int(upload_id[0], 16) % GRANT_SLOTS}", upload_id[:GRANT_TAG_DIGITS]


MAX_BATCH_GET_KEYS = 100


def usage_item_sub(item: Item) -> str | None:
    """The user whose usage item this is; None for any other item."""
    return sub_of_pk(item["pk"]["S"]) if item["sk"]["S"] == USAGE_SK else None


@dataclass(frozen=True)
class UserPage:
    """A page of users: of a keys-only index of usage items, or of the marks of due checks."""

    subs: list[str]
    # Where the next page starts; None when the query is done.
    next_start: dict[str, Any] | None


class Table:
    """The client, table and settings the ledger's parts share."""

    def __init__(
        self, client: DynamoDBClient, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = client
        self.name = settings.table_name
        self.settings = settings
        self.clock = clock

    def now(self) -> int:
        return int(self.clock())

    def usage_key(self, sub: str) -> Item:
        return {"pk": s(user_pk(sub)), "sk": s(USAGE_SK)}

    def usage_state(self, item: Item) -> UsageState:
        quota = (
            number(item, "quotaBytes")
            if "quotaBytes" in item
            else self.settings.default_quota_bytes
        )
        return UsageState(
            used_bytes=number(item, "usedBytes"),
            reserved_bytes=number(item, "reservedBytes"),
            quota_bytes=quota,
            object_count=number(item, "objectCount"),
        )

    def batch_get(
        self, keys: list[Item], consistent: bool = False, projection: str | None = None
    ) -> list[Item]:
        """Every item of ``keys`` that exists, a hundred keys to a request, retrying what
        DynamoDB leaves unprocessed."""
        found: list[Item] = []
        pending = list(keys)
        attempt = 0
        while pending:
            chunk, pending = pending[:MAX_BATCH_GET_KEYS], pending[MAX_BATCH_GET_KEYS:]
            request: Any = {"Keys": chunk, "ConsistentRead": consistent}
            if projection is not None:
                request["ProjectionExpression"] = projection
            response = self.db.batch_get_item(RequestItems={self.name: request})
            found += response.get("Responses", {}).get(self.name, [])
            unprocessed = response.get("UnprocessedKeys", {}).get(self.name)
            if unprocessed:
                pending.extend(unprocessed["Keys"])
                backoff(attempt)
                attempt += 1
        return found

    def user_page(
        self,
        query: dict[str, Any],
        start: dict[str, Any] | None,
        limit: int,
        sub_of: Callable[[Item], str | None],
    ) -> UserPage:
        """One page of a ``query`` listing users, each item read by ``sub_of`` (None: not a
        user), each user once."""
        request: dict[str, Any] = {"TableName": self.name, **query, "Limit": limit}
        if start is not None:
            request["ExclusiveStartKey"] = start
        response = self.db.query(**request)
        items = response.get("Items", [])
        subs = dict.fromkeys(sub for item in items if (sub := sub_of(item)) is not None)
        return UserPage(list(subs), response.get("LastEvaluatedKey"))

    def usage_item(self, sub: str) -> Item:
        response = self.db.get_item(
            TableName=self.name, Key=self.usage_key(sub), ConsistentRead=True
        )
        item: Item = response.get("Item", {})
        return item


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, not secrecy
