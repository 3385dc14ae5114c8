"""Applying S3 object events: each exactly once, two reads per batch, one write per user.

Objects are last-writer-wins registers (``OBJ#<key>``, see ``accounting``). A batch reads every
touched register and usage item (two ``BatchGetItem``), then writes one transaction per user:
the changed registers, each conditioned on the version it replaces, and the usage item's
counters, so a concurrent or repeated application cannot count anything twice. A user with no
drift check pending also gets the mark of one, put first (``checks``): once per check, not per
event.

Registers are read eventually consistent (half the price): a stale one only makes its
conditional write fail, and the retry reads them consistently. Usage items are read
consistently, because alert levels are judged from them.

An arrival ends its upload's reservation by taking its bytes out of the bucket its upload id
names; a bucket it empties is removed at once, so the sweeper never has to visit it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from quota_uploads.accounting import (
    ObjectChange,
    ObjectState,
    Release,
    UserChanges,
    plan_user_changes,
)
from quota_uploads.keys import USAGE_SK, object_sk, upload_sk, upload_terms, user_pk
from quota_uploads.ledger.alert_levels import AlertLevels
from quota_uploads.ledger.checks import check_due, mark_due, touch_clauses
from quota_uploads.ledger.model import Applied
from quota_uploads.ledger.table import (
    ATTEMPTS,
    MAX_TRANSACTION_ITEMS,
    Item,
    Table,
    backoff,
    bucket_names,
    buckets,
    cancel_mark,
    cancel_marks,
    expiry_shard,
    n,
    number,
    record_key,
    s,
)
from quota_uploads.s3_events import ObjectEvent

logger = logging.getLogger(__name__)

# Deleted objects keep a tombstone so a late, older create event for the key cannot revive it.
TOMBSTONE_SECONDS = 30 * 24 * 3600
# A change takes at most two transaction items (its register, its multipart record).
_CHANGES_PER_TRANSACTION = (MAX_TRANSACTION_ITEMS - 1) // 2


def object_state(item: Item) -> ObjectState:
    return ObjectState(
        exists=item["exists"]["BOOL"],
        size=number(item, "size"),
        etag=item["etag"]["S"],
        order=item["order"]["S"],
        event_time=item["eventTime"]["S"],
    )


class EventApplier:
    def __init__(self, table: Table, alerts: AlertLevels) -> None:
        self._table = table
        self._alerts = alerts

    def apply_events(self, events: Iterable[ObjectEvent]) -> Applied:
        """Apply S3 object events exactly once, and note users who crossed an alert level.

        A user whose registers moved between the read and the write is re-read and re-planned;
        a user whose writes fail is reported in ``failed`` and the others still go through.
        """
        by_user: dict[str, list[ObjectEvent]] = {}
        for event in events:
            by_user.setdefault(event.owner.sub, []).append(event)
        applied = Applied()
        if not by_user:
            return applied
        stored = self._read(by_user, consistent_registers=False)
        for sub, user_events in by_user.items():
            changes = self._apply_user(sub, user_events, stored)
            if changes is None:
                applied.failed.add(sub)
                continue
            before = stored.get((user_pk(sub), USAGE_SK), {})
            crossing = self._alerts.track(sub, before, changes.used_delta)
            if crossing is not None:
                applied.crossings.append(crossing)
        return applied

    def _apply_user(
        self, sub: str, events: Sequence[ObjectEvent], stored: dict[tuple[str, str], Item]
    ) -> UserChanges | None:
        """Writes one user's changes, re-reading after a conflict; None if it cannot."""
        db = self._table.db
        for attempt in range(ATTEMPTS):
            usage = stored.get((user_pk(sub), USAGE_SK), {})
            changes = self._plan(sub, events, stored, usage)
            try:
                self.write(changes, usage)
                return changes
            except (
                db.exceptions.TransactionCanceledException,
                db.exceptions.ConditionalCheckFailedException,
            ):
                # Another writer moved these registers or buckets since the read, or ended a
                # multipart upload: forget all this user's items read before, then read again.
                backoff(attempt)
                pk = user_pk(sub)
                for key in [key for key in stored if key[0] == pk]:
                    del stored[key]
                stored.update(self._read({sub: events}, consistent_registers=True))
            except db.exceptions.ClientError:
                logger.exception("could not apply events for user %s", sub)
                return None
        logger.error("events for user %s kept conflicting", sub)
        return None

    def _read(
        self, by_user: Mapping[str, Sequence[ObjectEvent]], consistent_registers: bool
    ) -> dict[tuple[str, str], Item]:
        # Usage items and multipart records decide releases: read them as they are now.
        decisive = {(user_pk(sub), USAGE_SK) for sub in by_user}
        decisive.update(
            (user_pk(e.owner.sub), upload_sk(e.owner.upload_id))
            for es in by_user.values()
            for e in es
            if e.owner.upload_id is not None and _is_multipart(e.owner.upload_id)
        )
        registers = {
            (user_pk(e.owner.sub), object_sk(e.key)) for es in by_user.values() for e in es
        }
        if consistent_registers:
            return self._get(decisive | registers, consistent=True)
        return {**self._get(decisive, consistent=True), **self._get(registers, consistent=False)}

    def _get(self, keys: set[tuple[str, str]], consistent: bool) -> dict[tuple[str, str], Item]:
        wanted = [{"pk": s(pk), "sk": s(sk)} for pk, sk in sorted(keys)]
        return {
            (item["pk"]["S"], item["sk"]["S"]): item
            for item in self._table.batch_get(wanted, consistent)
        }

    def _plan(
        self,
        sub: str,
        events: Sequence[ObjectEvent],
        stored: Mapping[tuple[str, str], Item],
        usage: Item,
    ) -> UserChanges:
        pk = user_pk(sub)
        registers = {
            e.key: object_state(stored[(pk, object_sk(e.key))])
            for e in events
            if (pk, object_sk(e.key)) in stored
        }
        multipart = {
            e.owner.upload_id
            for e in events
            if e.owner.upload_id is not None and (pk, upload_sk(e.owner.upload_id)) in stored
        }
        marks = cancel_marks(usage)
        cancelled = {
            e.owner.upload_id
            for e in events
            if e.owner.upload_id is not None
            and (terms := upload_terms(e.owner.upload_id)) is not None
            and marks.get(cancel_mark(e.owner.upload_id)) == terms.expires_at
        }
        return plan_user_changes(sub, events, registers, buckets(usage), multipart, cancelled)

    def write(self, changes: UserChanges, usage: Item | None = None) -> None:
        """Writes one user's changes; each register is conditioned on the state it replaces.

        ``usage`` is the usage item the changes were planned on, given for changes that S3
        events brought: buckets the changes empty are removed, conditioned on what it showed,
        and the user is touched, so a drift check follows (``checks``). Repairs, which are
        themselves that check, give none.
        """
        if changes.is_empty:
            return
        table = self._table
        now = table.now()
        pk = user_pk(changes.sub)
        per_chunk = _CHANGES_PER_TRANSACTION
        chunks = [
            changes.objects[i : i + per_chunk] for i in range(0, len(changes.objects), per_chunk)
        ]
        # Buckets are emptied only by a write that is the user's whole change.
        seen = usage if len(chunks) <= 1 else None
        touch = None
        if usage is not None:
            due = check_due(usage, now, table.settings.reconcile_settle_seconds)
            if due is not None:
                mark_due(table, changes.sub, due)
            touch = touch_clauses(now, due)
        for chunk in chunks or [()]:
            keys = {change.key for change in chunk}
            released = tuple(r for r in changes.released if r.key in keys)
            uncancelled = tuple(r for r in changes.uncancelled if r.key in keys)
            part = UserChanges(changes.sub, chunk, released, uncancelled)
            items: list[Any] = [{"Put": self._register_put(pk, c, now)} for c in chunk]
            # An abort may end the upload between the read and this write.
            items += [
                {
                    "Delete": {
                        "TableName": table.name,
                        "Key": record_key(changes.sub, r.upload_id),
                        "ConditionExpression": "attribute_exists(sk)",
                    }
                }
                for r in released
                if r.terms.multipart
            ]
            items.append({"Update": self._usage_update(part, now, seen, touch)})
            if len(items) == 1:
                table.db.update_item(**items[0]["Update"])
            else:
                table.db.transact_write_items(TransactItems=items)

    def _register_put(self, pk: str, change: ObjectChange, now: int) -> dict[str, Any]:
        after = change.after
        item: Item = {
            "pk": s(pk),
            "sk": s(object_sk(change.key)),
            "exists": {"BOOL": after.exists},
            "size": n(after.size),
            "etag": s(after.etag),
            "order": s(after.order),
            "eventTime": s(after.event_time),
            "stamp": s(after.stamp),
        }
        if not after.exists:
            item["ttl"] = n(now + TOMBSTONE_SECONDS)
        put: dict[str, Any] = {"TableName": self._table.name, "Item": item}
        if change.before is None:
            put["ConditionExpression"] = "attribute_not_exists(sk)"
        else:
            put["ConditionExpression"] = "stamp = :before"
            put["ExpressionAttributeValues"] = {":before": s(change.before.stamp)}
        return put

    def _usage_update(
        self,
        changes: UserChanges,
        now: int,
        seen: Item | None,
        touch: tuple[list[str], dict[str, Any]] | None,
    ) -> dict[str, Any]:
        committed = changes.used_delta + changes.reserved_delta
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":now": n(now),
            ":used": n(changes.used_delta),
            ":reserved": n(changes.reserved_delta),
            ":committed": n(committed),
            ":headroom": n(-committed),
            ":count": n(changes.object_count_delta),
            ":open": n(-len(changes.released)),
        }
        # Every usage item carries its shard, which lists its user for the daily audit.
        sets = ["updatedAt = :now", "expiryShard = if_not_exists(expiryShard, :userShard)"]
        values[":userShard"] = s(expiry_shard(changes.sub))
        if touch is not None:
            sets += touch[0]
            values.update(touch[1])
        removals: list[str] = []
        adds = [
            "usedBytes :used",
            "reservedBytes :reserved",
            "committedBytes :committed",
            "headroomBytes :headroom",
            "objectCount :count",
            "openReservations :open",
        ]
        conditions: list[str] = []
        open_buckets = buckets(seen) if seen is not None else {}
        emptied: set[int] = set()
        for index, (end, (freed, count)) in enumerate(_by_bucket(changes.released).items()):
            size_attr, count_attr = bucket_names(end)
            names[f"#b{index}"], names[f"#c{index}"] = size_attr, count_attr
            values[f":k{index}"] = n(count)
            bucket = open_buckets.get(end)
            if bucket is not None and bucket.count == count:
                emptied.add(end)
                removals += [f"#b{index}", f"#c{index}"]
                conditions.append(f"#c{index} = :k{index}")
            else:
                values[f":b{index}"], values[f":d{index}"] = n(-freed), n(-count)
                adds += [f"#b{index} :b{index}", f"#c{index} :d{index}"]
                conditions.append(f"#c{index} >= :k{index}")
        for index, release in enumerate(changes.released):
            if not release.terms.multipart:
                # A cancel landing since the read ended this reservation already.
                names[f"#x{index}"] = cancel_mark(release.upload_id)
                conditions.append(f"attribute_not_exists(#x{index})")
        cleared = {cancel_mark(release.upload_id) for release in changes.uncancelled}
        if seen is not None:
            # A cancelled upload of a bucket the arrivals empty can no longer be released.
            cleared |= {mark for mark, end in cancel_marks(seen).items() if end in emptied}
        for index, mark in enumerate(sorted(cleared)):
            names[f"#u{index}"] = mark
            removals.append(f"#u{index}")
        if seen is not None and "expiresAt" in seen and number(seen, "expiresAt") in emptied:
            # The earliest bucket is gone: point the sweeper at the next one, unless a grant
            # added a bucket since the read.
            remaining = [end for end in open_buckets if end not in emptied]
            if remaining:
                sets.append("expiresAt = :next")
                values[":next"] = n(min(remaining))
            else:
                removals.append("expiresAt")
            values[":grants"] = n(number(seen, "grantCount"))
            conditions.append("(attribute_not_exists(grantCount) OR grantCount = :grants)")
        expression = "SET " + ", ".join(sets)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        expression += " ADD " + ", ".join(adds)
        update: dict[str, Any] = {
            "TableName": self._table.name,
            "Key": self._table.usage_key(changes.sub),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return update


def _by_bucket(released: Sequence[Release]) -> dict[int, tuple[int, int]]:
    """Bytes and uploads released from each bucket, by its end time."""
    totals: dict[int, tuple[int, int]] = {}
    for release in released:
        freed, count = totals.get(release.terms.expires_at, (0, 0))
        totals[release.terms.expires_at] = (freed + release.terms.size, count + 1)
    return totals


def _is_multipart(upload_id: str) -> bool:
    terms = upload_terms(upload_id)
    return terms is not None and terms.multipart
