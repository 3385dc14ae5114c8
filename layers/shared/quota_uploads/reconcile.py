"""Drift repair: makes the ledger agree with what the bucket really holds.

Events can be lost (a message dead-lettered, a bug, someone writing to the bucket by hand), so a
scheduled run compares each user's registers with a listing of their prefix. It only touches a
key whose bucket state and register have both been still for ``settle_seconds``, longer than an
event can be in flight (SQS retries, then the DLQ), so it never races live traffic; each repair
goes through the ledger's normal conditional write. The repaired register's order sorts just
after the one it replaces, so any later real event for the key still wins.

Listing every object suits buckets up to a few million objects; beyond that, feed the same
comparison from an S3 Inventory report instead of ListObjectsV2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from quota_uploads.accounting import ObjectChange, ObjectState, UserChanges
from quota_uploads.keys import USERS_PREFIX, owner_of, user_prefix
from quota_uploads.ledger import Ledger, Swept

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Sorts after any order key it is appended to and before every later one of the same kind.
_REPAIR_SUFFIX = "~"
# Below every real order key ("s…" for sequencers, "t…" for event times).
_REPAIR_FLOOR = "0"


@dataclass(frozen=True)
class StoredObject:
    size: int
    etag: str
    last_modified: datetime


@dataclass
class Drift:
    users: int = 0
    keys_repaired: int = 0
    bytes_corrected: int = 0
    reservations_released: int = 0
    # Used plus reserved over every user once repaired: the store's committed bytes, which the
    # capacity alarm watches hourly beside S3's daily BucketSizeBytes.
    committed_bytes: int = 0


def _epoch(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class Reconciler:
    def __init__(
        self,
        ledger: Ledger,
        s3: S3Client,
        bucket: str,
        settle_seconds: int,
        release_stale: Callable[[], Swept],
    ) -> None:
        self._ledger = ledger
        self._release_stale = release_stale
        self._s3 = s3
        self._bucket = bucket
        self._settle = settle_seconds

    def run(self, now: float) -> Drift:
        drift = Drift(reservations_released=self._release_stale().reservations)
        for sub in sorted(self._bucket_users() | self._ledger.users()):
            drift.users += 1
            self._reconcile(sub, now, drift)
            usage = self._ledger.usage(sub)
            drift.committed_bytes += usage.used_bytes + usage.reserved_bytes
        return drift

    def _bucket_users(self) -> set[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=USERS_PREFIX, Delimiter="/"
        )
        prefixes = (p["Prefix"] for page in pages for p in page.get("CommonPrefixes", []))
        return {prefix[len(USERS_PREFIX) : -1] for prefix in prefixes}

    def _listing(self, sub: str) -> Iterator[tuple[str, StoredObject]]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=user_prefix(sub)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                owner = owner_of(obj["Key"])
                if owner is not None and owner.sub == sub:
                    stored = StoredObject(obj["Size"], obj["ETag"].strip('"'), obj["LastModified"])
                    yield obj["Key"], stored

    def _reconcile(self, sub: str, now: float, drift: Drift) -> None:
        seen = self._ledger.usage_item(sub)
        registers = self._ledger.registers(sub)
        bucket = dict(self._listing(sub))
        changes = []
        for key in bucket.keys() | registers.keys():
            change = self._repair(key, bucket.get(key), registers.get(key), now)
            if change is not None:
                changes.append(change)
        for change in changes:
            self._ledger.write(UserChanges(sub, (change,)))
            registers[change.key] = change.after
            before = change.before.charged_bytes if change.before else 0
            drift.keys_repaired += 1
            drift.bytes_corrected += abs(change.after.charged_bytes - before)
        if changes:
            # The registers moved under the counters just now; correct those on the next run.
            return
        live = [state for state in registers.values() if state.exists]
        drift.bytes_corrected += self._ledger.correct_counters(
            sub, seen, sum(s.size for s in live), len(live)
        )

    def _repair(
        self, key: str, stored: StoredObject | None, register: ObjectState | None, now: float
    ) -> ObjectChange | None:
        if register is not None and now - _epoch(register.event_time) < self._settle:
            return None
        if stored is not None and now - stored.last_modified.timestamp() < self._settle:
            return None
        order = register.order + _REPAIR_SUFFIX if register else _REPAIR_FLOOR
        event_time = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        if stored is None:
            if register is None or not register.exists:
                return None
            after = ObjectState(False, 0, "", order, event_time)
        else:
            if register is not None and register.exists and register.size == stored.size:
                return None
            after = ObjectState(True, stored.size, stored.etag, order, event_time)
        return ObjectChange(key, register, after)
