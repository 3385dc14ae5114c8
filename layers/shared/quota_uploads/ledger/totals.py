"""Store-wide totals, kept from the table's stream so no one ever scans the table for them.

Every change to a usage item, whoever writes it (grant, event, sweep, repair), reaches the
stream with its old and new image. A batch of them adds its differences to one of
``TOTAL_SHARDS`` items chosen at random, so no item is hot however busy the store is, in one
transaction with a marker named after the batch: Lambda delivers a stream batch again after a
failure, and the marker makes the second delivery a no-op. Reading the totals is one
``BatchGetItem`` of the shards.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from quota_uploads.ledger.table import Item, Table, n, number, s

TOTAL_SHARDS = 16
_TOTALS_SK = "TOTALS"
# Longer than Lambda keeps retrying a stream batch (the stream holds records for 24 hours).
_MARKER_SECONDS = 3 * 86400


def _shard_key(shard: int) -> Item:
    return {"pk": s(f"TOTALS#{shard}"), "sk": s(_TOTALS_SK)}


@dataclass(frozen=True)
class StoreTotals:
    used_bytes: int = 0
    committed_bytes: int = 0
    object_count: int = 0
    users: int = 0

    def __add__(self, other: StoreTotals) -> StoreTotals:
        return StoreTotals(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(StoreTotals))
        )


# The usage item's counters the totals add up, and the totals items' attributes.
_COUNTERS = {
    "used_bytes": "usedBytes",
    "committed_bytes": "committedBytes",
    "object_count": "objectCount",
}
_COLUMNS = {**_COUNTERS, "users": "userCount"}


def _of_image(image: Item | None) -> StoreTotals:
    if image is None:
        return StoreTotals()
    counts = {field: number(image, attribute) for field, attribute in _COUNTERS.items()}
    return StoreTotals(**counts, users=1)


def change_of(old: Item | None, new: Item | None) -> StoreTotals:
    """What one change to a usage item adds to the totals (ValueError if an image is malformed)."""
    before, after = _of_image(old), _of_image(new)
    return StoreTotals(
        *(getattr(after, f.name) - getattr(before, f.name) for f in fields(StoreTotals))
    )


class Totals:
    def __init__(self, table: Table) -> None:
        self._table = table

    def add(self, batch_id: str, changes: Iterable[StoreTotals]) -> bool:
        """Adds a stream batch's changes once; False if this batch was already added (or held
        no change to add)."""
        total = sum(changes, StoreTotals())
        if total == StoreTotals():
            return False
        table = self._table
        values: dict[str, Any] = {f":{field}": n(getattr(total, field)) for field in _COLUMNS}
        additions = ", ".join(f"{attribute} :{field}" for field, attribute in _COLUMNS.items())
        shard = random.randrange(TOTAL_SHARDS)  # noqa: S311 - spreading load, not secrecy
        try:
            table.db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table.name,
                            "Item": {
                                "pk": s("TOTALS"),
                                "sk": s(f"BATCH#{batch_id}"),
                                "ttl": n(table.now() + _MARKER_SECONDS),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": table.name,
                            "Key": _shard_key(shard),
                            "UpdateExpression": f"ADD {additions}",
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except table.db.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def read(self) -> StoreTotals:
        table = self._table
        items = table.batch_get([_shard_key(shard) for shard in range(TOTAL_SHARDS)], True)
        return sum(
            (StoreTotals(**{f: number(item, a) for f, a in _COLUMNS.items()}) for item in items),
            StoreTotals(),
        )
