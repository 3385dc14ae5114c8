"""One user's drift check: registers and counters made to agree with a listing of their prefix.

Events can be lost (a message dead-lettered, a bug, someone writing to the bucket by hand). A
check only touches a key whose bucket state and register have both been still for the settle
time, longer than an event can be in flight (SQS retries, then the DLQ), so it never races live
traffic; each repair goes through the ledger's normal conditional write. The repaired
register's order sorts just after the one it replaces, so any later real event for the key
still wins. Counters are then set to what the registers say, conditioned on the counters read.

A check costs one LIST per 1,000 objects of the user and one consistent read of their usage
item; their registers are read only when the counters disagree with the listing. A lost create
and a lost delete of the same size pass that comparison, but leave the counters exact; the
deletion of the object whose create was lost changes no counter, so its check then finds them
off the listing and repairs both keys. Who gets checked is decided in ``work``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from quota_uploads.accounting import ObjectChange, ObjectState, UserChanges
from quota_uploads.keys import owner_of, user_prefix
from quota_uploads.ledger import Ledger
from quota_uploads.ledger.audit import counters_agree

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


@dataclass(frozen=True)
class Repaired:
    keys: int = 0
    bytes: int = 0


def _epoch(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class UserCheck:
    def __init__(self, ledger: Ledger, s3: S3Client, bucket: str, settle_seconds: int) -> None:
        self._ledger = ledger
        self._s3 = s3
        self._bucket = bucket
        self._settle = settle_seconds

    def check(self, sub: str, now: float) -> Repaired:
        ledger = self._ledger
        seen = ledger.usage_item(sub)
        stored = dict(self._listing(sub))
        if counters_agree(seen, sum(o.size for o in stored.values()), len(stored)):
            # Counters equal to the listing and to themselves: the registers they were counted
            # from need no reading (most checks; it halves their cost).
            ledger.checks.finish(sub, seen, int(now))
            return Repaired()
        registers = ledger.registers(sub)
        changes = [
            change
            for key in stored.keys() | registers.keys()
            if (change := self._repair(key, stored.get(key), registers.get(key), now)) is not None
        ]
        corrected = 0
        for change in changes:
            ledger.write(UserChanges(sub, (change,)))
            before = change.before.charged_bytes if change.before else 0
            corrected += abs(change.after.charged_bytes - before)
        if changes:
            # The repairs moved the counters: read them again before setting them to the truth.
            seen = ledger.usage_item(sub)
            registers = ledger.registers(sub)
        live = [state for state in registers.values() if state.exists]
        corrected += ledger.correct_counters(sub, seen, sum(s.size for s in live), len(live))
        ledger.checks.finish(sub, seen, int(now))
        return Repaired(len(changes), corrected)

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
