"""The sweeper: ends reservations whose time is up, user by user, and never stops for one.

Driven by a schedule, not DynamoDB TTL, whose deletions may lag by days. The sparse index holds
usage items by their earliest bucket end and multipart records by their expiry, projecting only
the keys and what an S3 abort needs. Each write handles at most ``BUCKETS_PER_WRITE`` buckets,
so no expression outgrows DynamoDB's limits, and whatever fails for one user or record (a
malformed item, a throttle) is counted and left for the next run while the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from quota_uploads.keys import USAGE_SK, sub_of_pk
from quota_uploads.ledger.checks import check_due, mark_due, touch_clauses
from quota_uploads.ledger.model import Swept
from quota_uploads.ledger.table import (
    ATTEMPTS,
    EXPIRY_INDEX,
    EXPIRY_SHARDS,
    FREE_RESERVATIONS,
    Item,
    Table,
    backoff,
    bucket_names,
    buckets,
    cancel_marks,
    freed,
    n,
    number,
    s,
)

logger = logging.getLogger(__name__)

BUCKETS_PER_WRITE = 40
# Aborts one multipart upload in S3 given its key and S3 upload id.
AbortUpload = Callable[[str, str], None]


@dataclass(frozen=True)
class _Ending:
    """One write ending expired buckets: what it ends, and whether it ends all that is due."""

    update: dict[str, Any]
    reservations: int
    bytes: int
    complete: bool
    # The drift check the write schedules (its mark is put first); None if one is pending.
    check_at: int | None


class SweepStuck(Exception):
    """A user's item kept changing under the sweeper; the next run tries again."""


class Sweeper:
    def __init__(self, table: Table) -> None:
        self._table = table

    def release_expired(
        self, abort: AbortUpload, should_stop: Callable[[], bool] = lambda: False
    ) -> Swept:
        """Release every reservation past its end, and abort expired multipart uploads."""
        now = self._table.now()
        swept = Swept()
        for item in self._due(now):
            if should_stop():
                break
            try:
                if item["sk"]["S"] == USAGE_SK:
                    reservations, freed = self._sweep_usage(item["pk"], now)
                    swept.reservations += reservations
                    swept.bytes += freed
                else:
                    self._end_multipart(item, abort)
                    swept.uploads_aborted += 1
            except Exception:
                swept.failures += 1
                logger.exception("could not sweep %s %s", item["pk"]["S"], item["sk"]["S"])
        return swept

    def _due(self, now: int) -> Iterator[Item]:
        paginator = self._table.db.get_paginator("query")
        for shard in range(EXPIRY_SHARDS):
            pages = paginator.paginate(
                TableName=self._table.name,
                IndexName=EXPIRY_INDEX,
                KeyConditionExpression="expiryShard = :shard AND expiresAt <= :now",
                ExpressionAttributeValues={":shard": s(str(shard)), ":now": n(now)},
            )
            for page in pages:
                yield from page.get("Items", [])

    def _sweep_usage(self, pk: Item, now: int) -> tuple[int, int]:
        """Ends one user's expired buckets; re-reads if a writer got there first."""
        table = self._table
        key = {"pk": pk, "sk": s(USAGE_SK)}
        sub = sub_of_pk(pk["S"])
        released = freed_bytes = 0
        attempt = 0
        while attempt < ATTEMPTS:
            # A stale first read (half the price) only fails the conditional write below.
            item = table.db.get_item(TableName=table.name, Key=key, ConsistentRead=attempt > 0).get(
                "Item", {}
            )
            if "expiresAt" not in item:
                break
            ending = self._ending(item, now)
            if ending is None:
                break
            if ending.check_at is not None:
                mark_due(table, sub, ending.check_at)
            try:
                table.db.update_item(TableName=table.name, Key=key, **ending.update)
            except (
                table.db.exceptions.ConditionalCheckFailedException,
                table.db.exceptions.TransactionConflictException,
            ):
                backoff(attempt)
                attempt += 1
                continue
            released += ending.reservations
            freed_bytes += ending.bytes
            if ending.complete:
                break
        else:
            raise SweepStuck(f"{pk['S']} kept changing")
        return released, freed_bytes

    def _ending(self, item: Item, now: int) -> _Ending | None:
        """The update ending the item's earliest expired buckets; None if nothing is due."""
        open_buckets = buckets(item)
        all_due = sorted(end for end in open_buckets if end <= now)
        due = all_due[:BUCKETS_PER_WRITE]
        remaining = [end for end in open_buckets if end not in due]
        following = min(remaining) if remaining else None
        current = number(item, "expiresAt")
        if not due and following == current:
            return None
        size = sum(open_buckets[end].bytes for end in due)
        reservations = sum(open_buckets[end].count for end in due)
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            **freed(size, reservations),
            ":grants": n(number(item, "grantCount")),
        }
        # Any grant since the read may have added a bucket earlier than ``following``.
        conditions = ["(attribute_not_exists(grantCount) OR grantCount = :grants)"]
        removals = []
        for index, end in enumerate(due):
            size_attr, count_attr = bucket_names(end)
            names[f"#b{index}"], names[f"#c{index}"] = size_attr, count_attr
            values[f":b{index}"] = n(open_buckets[end].bytes)
            values[f":c{index}"] = n(open_buckets[end].count)
            removals += [f"#b{index}", f"#c{index}"]
            conditions.append(f"#b{index} = :b{index} AND #c{index} = :c{index}")
        ended = set(due)
        for index, mark in enumerate(m for m, end in cancel_marks(item).items() if end in ended):
            # Its upload can no longer arrive within its reservation: nothing left to guard.
            names[f"#x{index}"] = mark
            removals.append(f"#x{index}")
        sets: list[str] = []
        check_at = None
        if due:
            # Reservations ending unused may hide an object whose event was lost: check later.
            check_at = check_due(item, now, self._table.settings.reconcile_settle_seconds)
            sets, touch_values = touch_clauses(now, check_at)
            values.update(touch_values)
        if following is None:
            removals.append("expiresAt")
        else:
            values[":next"] = n(following)
            sets.append("expiresAt = :next")
        expression = f"SET {', '.join(sets)} " if sets else ""
        if removals:
            expression += f"REMOVE {', '.join(removals)} "
        expression += f"ADD {FREE_RESERVATIONS}"
        update: dict[str, Any] = {
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return _Ending(update, reservations, size, len(all_due) == len(due), check_at)

    def _end_multipart(self, record: Item, abort: AbortUpload) -> None:
        """Aborts the upload in S3, then forgets it; its bytes leave with its bucket."""
        abort(record["objectKey"]["S"], record["s3UploadId"]["S"])
        table = self._table
        # Without a condition: the record may already be gone (an abort, a completion).
        table.db.delete_item(TableName=table.name, Key={"pk": record["pk"], "sk": record["sk"]})
