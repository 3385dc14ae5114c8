"""Which users need a drift check, and when: kept by activity, so an idle user costs nothing.

A change that could sit beside a lost event (an S3 event applied, a reservation swept unused, a
file deleted through the API) *touches* the user's usage item: ``touchedAt`` becomes now, and if
no check is pending (``checkAt`` absent, or not after now) ``checkAt`` becomes now plus the
settle time, longer than an event can be in flight. So a busy user is scheduled once per check,
not once per event.

A scheduled check is a *mark*: an item ``DUE#<shard>`` / ``<checkAt>#<sub>`` of ~70 bytes, put
before the write that sets ``checkAt``, so a crash between the two costs a spare check, never a
missing one. A mark costs 1 WRU and TTL removes it for nothing a week later; an index keyed by
``checkAt`` would cost a delete and a put (2 WRU) each time the entry moves.

The hourly pass walks each shard's marks from a cursor (``CHECKS#<shard>``) up to
``WRITE_LAG_SECONDS`` ago: marks behind it were checked. A check covers every touch that has
settled; one that finds a later touch schedules the next check at that touch plus the settle time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from quota_uploads.ledger.table import ATTEMPTS, Item, Table, UserPage, expiry_shard, n, number, s

_CURSOR_SK = "CURSOR"
# A touch reads whether a check is pending by its clock, and its write lands later, within its
# function's timeout (a minute at most: template.yaml). A pass checks only marks this much older
# than itself, so no check runs between a touch's clock and its write and misses the touch.
WRITE_LAG_SECONDS = 120
# Long past any pass that could still walk the mark (passes run hourly).
_MARK_KEPT_SECONDS = 7 * 24 * 3600
_AT_DIGITS = 12


def cursor_pk(shard: int) -> str:
    return f"CHECKS#{shard}"


def marks_pk(shard: int | str) -> str:
    return f"DUE#{shard}"


def check_due(usage: Item, now: int, settle: int) -> int | None:
    """When a touch at ``now`` of the user whose usage item read as ``usage`` makes their next
    check due; None if one is pending already."""
    if "checkAt" not in usage or number(usage, "checkAt") <= now:
        return now + settle
    return None


def touch_clauses(now: int, due: int | None) -> tuple[list[str], dict[str, Any]]:
    """SET clauses (and their values) of a touch at ``now`` scheduling a check at ``due``."""
    sets = ["touchedAt = :touched"]
    values: dict[str, Any] = {":touched": n(now)}
    if due is not None:
        sets.append("checkAt = :checkAt")
        values[":checkAt"] = n(due)
    return sets, values


def mark_due(table: Table, sub: str, at: int) -> None:
    """Puts the mark of ``sub``'s check at ``at``; idempotent."""
    table.db.put_item(
        TableName=table.name,
        Item={
            "pk": s(marks_pk(expiry_shard(sub))),
            "sk": s(f"{at:0{_AT_DIGITS}d}#{sub}"),
            "ttl": n(at + _MARK_KEPT_SECONDS),
        },
    )


def _marked_sub(mark: Item) -> str:
    return str(mark["sk"]["S"]).split("#", 1)[1]


class Checks:
    def __init__(self, table: Table) -> None:
        self._table = table

    @property
    def settle(self) -> int:
        return self._table.settings.reconcile_settle_seconds

    def touch(self, sub: str) -> None:
        """Marks an existing user as touched (an API delete).

        Read eventually consistent: ``checkAt`` only moves forward, so a stale read can only
        show no check pending when one is, which costs a spare mark, or miss an item made a
        moment ago, which a user deleting a file they uploaded does not have."""
        table = self._table
        now = table.now()
        usage = table.db.get_item(TableName=table.name, Key=table.usage_key(sub)).get("Item")
        if usage is None:
            return
        due = check_due(usage, now, self.settle)
        if due is not None:
            mark_due(table, sub, due)
            if self._touch(sub, now, due):
                return
        # A check is pending: only the touch is news.
        self._touch(sub, now, None)

    def _touch(self, sub: str, now: int, due: int | None) -> bool:
        """Writes a touch of an existing user, scheduling their check at ``due`` if no other
        is pending by then; False if the condition failed."""
        table = self._table
        sets, values = touch_clauses(now, due)
        condition = "attribute_exists(pk)"
        if due is not None:
            condition += " AND (attribute_not_exists(checkAt) OR checkAt <= :touched)"
        try:
            table.db.update_item(
                TableName=table.name,
                Key=table.usage_key(sub),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except table.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def schedule_unknown(self, subs: Iterable[str], now: int) -> None:
        """Makes users the ledger has no item for due for a check now (found in S3 only).

        Touched too, so the audit's comparison of counters leaves them to that check."""
        table = self._table
        for sub in subs:
            mark_due(table, sub, now)
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
        query = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :until",
            "ExpressionAttributeValues": {
                ":pk": s(marks_pk(shard)),
                # "#" < "$": every mark of a second sorts between these two.
                ":from": s(f"{after + 1:0{_AT_DIGITS}d}#"),
                ":until": s(f"{until:0{_AT_DIGITS}d}$"),
            },
            "ProjectionExpression": "sk",
        }
        # A user marked twice in the page (a retried touch) is checked once.
        return self._table.user_page(query, start, limit, _marked_sub)

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
            mark_due(table, sub, due)
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
