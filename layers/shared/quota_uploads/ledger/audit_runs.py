"""What the daily audit keeps in the table while it runs: its run, S3's count per user, users.

An inventory report is read in slices, in any order and possibly twice (SQS delivers at least
once). Each slice adds what it saw of a user to ``USER#<sub>/AUDIT#<run>``, conditioned on the
slice's name not being there yet, so a user split across slices or files is summed exactly once
per slice. The run item (``AUDIT#<run>/RUN``) counts the files done; the slice that completes
the last one queues the comparison of every user, shard by shard, through the ``UsersByShard``
index (keys only: a user enters it once, when their usage item is created). Audit items expire
after a few days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from quota_uploads.keys import USAGE_SK, sub_of_pk, user_pk
from quota_uploads.ledger.table import Item, Table, UserPage, n, number, s, usage_item_sub

USERS_INDEX = "UsersByShard"
_RUN_SK = "RUN"
_KEEP_SECONDS = 3 * 86400


def audit_sk(run: str) -> str:
    return f"AUDIT#{run}"


@dataclass(frozen=True)
class Counted:
    """What S3's inventory holds of one user: their bytes and objects."""

    bytes: int = 0
    objects: int = 0


@dataclass(frozen=True)
class UserRecord:
    """A user's usage item and what the audit counted of them in S3."""

    sub: str
    usage: Item
    counted: Counted


class AuditRuns:
    def __init__(self, table: Table) -> None:
        self._table = table

    def start(self, run: str, files: int) -> bool:
        """Records a new run of ``files`` data files; False if this run was already started."""
        table = self._table
        try:
            table.db.put_item(
                TableName=table.name,
                Item={
                    "pk": s(audit_sk(run)),
                    "sk": s(_RUN_SK),
                    "files": n(files),
                    "ttl": n(table.now() + _KEEP_SECONDS),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except table.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def count(self, run: str, slice_id: str, counted: Mapping[str, Counted]) -> int:
        """Adds one slice's counts per user, each once; returns how many users were new to it."""
        table = self._table
        added = 0
        for sub, seen in counted.items():
            try:
                table.db.update_item(
                    TableName=table.name,
                    Key={"pk": s(user_pk(sub)), "sk": s(audit_sk(run))},
                    UpdateExpression=(
                        "ADD objectBytes :bytes, objectCount :objects, slices :slice "
                        "SET #ttl = :ttl"
                    ),
                    ConditionExpression="NOT contains(slices, :name)",
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":bytes": n(seen.bytes),
                        ":objects": n(seen.objects),
                        ":slice": {"SS": [slice_id]},
                        ":name": s(slice_id),
                        ":ttl": n(table.now() + _KEEP_SECONDS),
                    },
                )
                added += 1
            except table.db.exceptions.ConditionalCheckFailedException:
                pass
        return added

    def file_done(self, run: str, file: int) -> bool:
        """Marks a data file read; True once every file of the run is, and the users not queued."""
        table = self._table
        key = {"pk": s(audit_sk(run)), "sk": s(_RUN_SK)}
        try:
            item = table.db.update_item(
                TableName=table.name,
                Key=key,
                UpdateExpression="ADD done :file",
                ConditionExpression="attribute_exists(pk) AND NOT contains(done, :one)",
                ExpressionAttributeValues={":file": {"NS": [str(file)]}, ":one": n(file)},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except table.db.exceptions.ConditionalCheckFailedException:
            # Delivered again: the first delivery may have stopped before queueing the users.
            item = table.db.get_item(TableName=table.name, Key=key, ConsistentRead=True).get(
                "Item", {}
            )
        done = len(cast(Item, item).get("done", {}).get("NS", []))
        return bool(item) and done >= number(item, "files") and "usersQueued" not in item

    def users_queued(self, run: str) -> None:
        table = self._table
        table.db.update_item(
            TableName=table.name,
            Key={"pk": s(audit_sk(run)), "sk": s(_RUN_SK)},
            UpdateExpression="SET usersQueued = :yes",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    def users(self, shard: int, start: dict[str, Any] | None = None, limit: int = 100) -> UserPage:
        """A page of the users of one shard, from the keys-only index of usage items."""
        query = {
            "IndexName": USERS_INDEX,
            "KeyConditionExpression": "expiryShard = :shard",
            "ExpressionAttributeValues": {":shard": s(str(shard))},
        }
        return self._table.user_page(query, start, limit, usage_item_sub)

    def known(self, subs: Iterable[str]) -> set[str]:
        """Which of these users have a usage item (eventually consistent)."""
        keys = [{"pk": s(user_pk(sub)), "sk": s(USAGE_SK)} for sub in dict.fromkeys(subs)]
        found = self._table.batch_get(keys, projection="pk")
        return {sub_of_pk(item["pk"]["S"]) for item in found}

    def records(self, run: str, subs: Iterable[str]) -> list[UserRecord]:
        """Each user's usage item and audit counts (eventually consistent: they only choose
        whom to check, and the check reads again)."""
        wanted = list(dict.fromkeys(subs))
        keys: list[Item] = [
            {"pk": s(user_pk(sub)), "sk": s(sk)}
            for sub in wanted
            for sk in (USAGE_SK, audit_sk(run))
        ]
        found = {(i["pk"]["S"], i["sk"]["S"]): i for i in self._table.batch_get(keys)}
        records = []
        for sub in wanted:
            audit = found.get((user_pk(sub), audit_sk(run)), {})
            records.append(
                UserRecord(
                    sub,
                    found.get((user_pk(sub), USAGE_SK), {}),
                    Counted(number(audit, "objectBytes"), number(audit, "objectCount")),
                )
            )
        return records
