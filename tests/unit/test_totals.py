"""Store-wide totals from the stream: each batch added once, over shards, with no scan."""

from __future__ import annotations

from typing import Any

import pytest

from quota_uploads.config import Settings
from quota_uploads.ledger import Ledger
from quota_uploads.ledger.totals import StoreTotals, change_of


def usage(used: int, reserved: int = 0, objects: int = 0) -> dict[str, Any]:
    return {
        "pk": {"S": "USER#alice"},
        "sk": {"S": "USAGE"},
        "usedBytes": {"N": str(used)},
        "committedBytes": {"N": str(used + reserved)},
        "objectCount": {"N": str(objects)},
    }


def test_a_change_adds_the_difference_of_its_images() -> None:
    assert change_of(None, usage(10, 5, 1)) == StoreTotals(10, 15, 1, 1)
    assert change_of(usage(10, 5, 1), usage(30, 0, 2)) == StoreTotals(20, 15, 1, 0)
    assert change_of(usage(30, 0, 2), None) == StoreTotals(-30, -30, -2, -1)
    with pytest.raises(ValueError, match="many"):
        change_of(None, {**usage(1), "usedBytes": {"N": "many"}})


def test_batches_are_added_once_and_read_back_over_all_shards(
    dynamodb: Any, settings: Settings
) -> None:
    totals = Ledger(dynamodb, settings).totals
    assert totals.read() == StoreTotals()
    for batch in range(40):
        assert totals.add(f"batch-{batch}", [change_of(None, usage(10, 1, 1))])
    assert not totals.add("batch-0", [change_of(None, usage(10, 1, 1))])
    assert totals.read() == StoreTotals(400, 440, 40, 40)
    shards = dynamodb.scan(
        TableName=settings.table_name,
        FilterExpression="sk = :t",
        ExpressionAttributeValues={":t": {"S": "TOTALS"}},
    )["Items"]
    assert len(shards) > 1
