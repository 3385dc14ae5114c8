"""Which users need a drift check, and when: kept by activity, so an idle user costs nothing.

A change that could sit beside a lost event (an S3 event applied, a reservation swept unused, a
file deleted through the API) *touches* the user's usage item: ``touchedAt`` becomes now, and if
no check is pending (``checkAt`` absent, or not after now) ``checkAt`` becomes now plus the
settle time, longer than an event can be in flight. ``checkAt`` keys the sparse ``ChecksDue``
index (projecting keys only), so a busy user moves their index entry once per check, not once
per event, and a user with no activity has no entry to read.

The hourly pass walks each index shard from a cursor (``CHECKS#<shard>``): entries behind it
were checked and stay there without a write to take them out. A check covers every touch that
has settled; one that finds a later touch moves ``checkAt`` to that touch plus the settle time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from quota_uploads.ledger.table import ATTEMPTS, Item, Table, UserPage, expiry_shard, n, number, s

CHECKS_INDEX = "ChecksDue"
_CURSOR_SK = "CURSOR"


def cursor_pk(shard: int) -> str:
    return f"CHECKS#{shard}"


def touch_clauses(usage: Item, now: int, settle: int) -> tuple[list[str], dict[str, Any]]:
    """SET clauses (and their values) touching the user whose usage item read as ``usage``.

    The item must carry its shard (``expiryShard``), which the index of checks is split by."""
    sets = ["touchedAt = :touched"]
    values: dict[str, Any] = {":touched": n(now)}
    if "checkAt" not in usage or number(usage, "checkAt") <= now:
        sets.append("checkAt = :checkAt")
        values[":checkAt"] = n(now + settle)
    return sets, values


class Checks:
    def __init__(self, table: Table) -> None:
        self._table = table

    @property
    def settle(self) -> int:
        return self._table.settings.reconcile_settle_seconds

    def touch(self, sub: str) -> None:
        """Marks an existing user as touched without reading their item (an API delete)."""
        table = self._table
        now = table.now()
        try:
            table.db.update_item(
                TableName=table.name,
                Key=table.usage_key(sub),
                UpdateExpression="SET touchedAt = :now, checkAt = :due",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(checkAt) OR checkAt <= :now)"
                ),
                ExpressionAttributeValues={":now": n(now), ":due": n(now + self.settle)},
            )
        except table.db.exceptions.ConditionalCheckFailedException:
            # A check is already pending (or the user has no item): only the touch is news.
            with contextlib.suppress(table.db.exceptions.ConditionalCheckFailedException):
                table.db.update_item(
                    TableName=table.name,
                    Key=table.usage_key(sub),
                    UpdateExpression="SET touchedAt = :now",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":now": n(now)},
                )

    def schedule_unknown(self, subs: Iterable[str], now: int) -> None:
        """Makes users the ledger has no item for due for a check now (found in S3 only).

        Touched too, so the audit's comparison of counters leaves them to that check."""
        table = self._table
        for sub in subs:
            with contextlib.suppress(table.db.exceptions.ConditionalCheckFailedException):
                table.db.update_item(
                    TableName=table.name,
                    Key=table.usage_key(sub),
                    UpdateExpression="SET checkAt = :now, touchedAt = :now, expiryShard = :shard",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeValues={":now": n(now), ":shard": s(expiry_shard(sub))},
                )

    def cursor(self, shard: int) -> int:
        """Where the shard's last completed pass ended: every entry up to it was checked."""
        table = self._table
        item = table.db.get_item(
            TableName=table.name,
            Key={"pk": s(cursor_pk(shard)), "sk": s(_CURSOR_SK)},
            ConsistentRead=True,
        ).get("Item", {})
        return number(item, "checkedUntil")

    def advance(self, shard: int, checked_from: int, until: int) -> bool:
        """Moves the cursor past a completed pass; False if another pass moved it first."""
        table = self._table
        try:
            table.db.update_item(
                TableName=table.name,
                Key={"pk": s(cursor_pk(shard)), "sk": s(_CURSOR_SK)},
                UpdateExpression="SET checkedUntil = :until",
                ConditionExpression=(
                    "(attribute_not_exists(checkedUntil) AND :from = :zero) OR checkedUntil = :from"
                ),
                ExpressionAttributeValues={
                    ":until": n(until),
                    ":from": n(checked_from),
                    ":zero": n(0),
                },
            )
        except table.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def due(
        self,
        shard: int,
        after: int,
        until: int,
        start: dict[str, Any] | None = None,
        limit: int = 100,
    ) -> UserPage:
        """Users of ``shard`` whose check fell due in (``after``, ``until``], a page at a time."""
        return self._table.user_page(
            CHECKS_INDEX,
            "expiryShard = :shard AND checkAt BETWEEN :from AND :until",
            {":shard": s(str(shard)), ":from": n(after + 1), ":until": n(until)},
            start,
            limit,
        )

    def finish(self, sub: str, checked: Item, now: int) -> None:
        """After a check at ``now`` on the item read as ``checked``: schedule the next one if a
        touch has not settled yet. Conditioned on the touch read, re-read when it moved."""
        table = self._table
        item = checked
        for _ in range(ATTEMPTS):
            touched = number(item, "touchedAt")
            if "touchedAt" not in item or touched + self.settle <= now:
                return
            due = touched + self.settle
            if number(item, "checkAt") >= due:
                return
            try:
                table.db.update_item(
                    TableName=table.name,
                    Key=table.usage_key(sub),
                    UpdateExpression="SET checkAt = :due",
                    ConditionExpression="touchedAt = :touched",
                    ExpressionAttributeValues={":due": n(due), ":touched": n(touched)},
                )
                return
            except table.db.exceptions.ConditionalCheckFailedException:
                item = table.usage_item(sub)
        raise RuntimeError(f"{sub} kept being touched while its next check was set")
