"""What a drift check reads and corrects: a user's registers, and counters set to the truth."""

from __future__ import annotations

from typing import Any

from quota_uploads.accounting import ObjectState
from quota_uploads.keys import object_sk, user_pk
from quota_uploads.ledger.events import object_state
from quota_uploads.ledger.table import Item, Table, buckets, n, number, s


def counters_agree(usage: Item, stored_bytes: int, stored_objects: int) -> bool:
    """Whether a user's counters equal what S3 holds of them and what their own buckets hold.

    A lost create and a lost delete of the same size, cancelling out, pass this test; the
    registers would show them, at the price of reading every one."""
    used, reserved = number(usage, "usedBytes"), number(usage, "reservedBytes")
    open_buckets = buckets(usage).values()
    return (
        used == stored_bytes
        and number(usage, "objectCount") == stored_objects
        and reserved == sum(bucket.bytes for bucket in open_buckets)
        and number(usage, "openReservations") == sum(bucket.count for bucket in open_buckets)
        and number(usage, "committedBytes") == used + reserved
    )


class Audit:
    def __init__(self, table: Table) -> None:
        self._table = table

    def registers(self, sub: str) -> dict[str, ObjectState]:
        """Every object register of a user, tombstones included."""
        table = self._table
        pages = table.db.get_paginator("query").paginate(
            TableName=table.name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :obj)",
            ExpressionAttributeValues={":pk": s(user_pk(sub)), ":obj": s(object_sk(""))},
            ConsistentRead=True,
        )
        return {
            item["sk"]["S"][len(object_sk("")) :]: object_state(item)
            for page in pages
            for item in page.get("Items", [])
        }

    def correct_counters(self, sub: str, seen: Item, used: int, object_count: int) -> int:
        """Sets a user's counters to what their registers and reservation buckets say.

        Conditioned on the counters read in ``seen`` (read before the registers), so any write
        in between makes this a no-op for the next run to retry. Returns the bytes corrected.
        """
        open_buckets = buckets(seen).values()
        reserved = sum(bucket.bytes for bucket in open_buckets)
        truth = {
            "usedBytes": used,
            "objectCount": object_count,
            "reservedBytes": reserved,
            "openReservations": sum(bucket.count for bucket in open_buckets),
        }
        old = {name: number(seen, name) for name in truth}
        if old == truth and number(seen, "committedBytes") == used + reserved:
            return 0
        values: dict[str, Any] = {":committed": n(used + reserved)}
        conditions = []
        for index, (name, value) in enumerate(truth.items()):
            values[f":new{index}"] = n(value)
            values[f":old{index}"] = n(old[name])
            missing = f"attribute_not_exists({name}) OR " if old[name] == 0 else ""
            conditions.append(f"({missing}{name} = :old{index})")
        assignments = [f"{name} = :new{i}" for i, name in enumerate(truth)]
        assignments.append("committedBytes = :committed")
        if "quotaBytes" in seen:
            assignments.append("headroomBytes = quotaBytes - :committed")
        table = self._table
        try:
            table.db.update_item(
                TableName=table.name,
                Key=table.usage_key(sub),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeValues=values,
            )
        except table.db.exceptions.ConditionalCheckFailedException:
            return 0
        return abs(used - old["usedBytes"]) + abs(reserved - old["reservedBytes"])
