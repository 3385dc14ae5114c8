"""The quota ledger: where the quota is decided and where usage is kept, in one DynamoDB table.

Each user has one usage item (``USER#<sub>`` / ``USAGE``) holding the counters and the open
reservations, one attribute per grant, so that a grant is a single conditional ``UpdateItem``: it
checks the quota, reserves the bytes and records the reservation in one request, with no
read-then-write window. DynamoDB conditions cannot add two attributes, so the item also keeps
``committedBytes`` (used + reserved) and, for users with their own quota, ``headroomBytes``
(quota - committed); every change moves all of them together.

Objects are last-writer-wins registers (``OBJ#<key>``, see ``accounting``); applying events writes
the changed registers and the usage item in one transaction per user, each register conditioned on
the version it replaces, so a concurrent or repeated application cannot count anything twice.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError as AwsError

from quota_uploads.accounting import ObjectChange, ObjectState, UserChanges, plan_user_changes
from quota_uploads.alerts import AlertPolicy, Crossing
from quota_uploads.config import Settings
from quota_uploads.errors import Conflict, QuotaExceeded
from quota_uploads.keys import USAGE_SK, object_sk, user_pk
from quota_uploads.models import Usage
from quota_uploads.s3_events import ObjectEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

RESERVATION_PREFIX = "res:"
# Each open reservation is ~60 bytes of the usage item (max 400 KB) and of every write to it.
MAX_OPEN_RESERVATIONS = 1000
# The sweeper queries the sparse expiry index shard by shard so no single partition runs hot.
EXPIRY_SHARDS = 8
EXPIRY_INDEX = "ReservationsByExpiry"
# Deleted objects keep a tombstone so a late, older create event for the key cannot revive it.
TOMBSTONE_SECONDS = 30 * 24 * 3600
MAX_TRANSACTION_ITEMS = 100
MAX_BATCH_GET_KEYS = 100
_ATTEMPTS = 8

Item = dict[str, Any]


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _int(item: Item, name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value else 0


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, not secrecy


@dataclass
class Applied:
    """What applying a batch of events did: users whose writes failed, levels crossed."""

    failed: set[str] = field(default_factory=set)
    crossings: list[Crossing] = field(default_factory=list)


@dataclass(frozen=True)
class MultipartTarget:
    key: str
    s3_upload_id: str
    part_bytes: int


@dataclass(frozen=True)
class Reservation:
    sub: str
    upload_id: str
    bytes: int
    expires_at: int
    # Multipart uploads only: where the object goes and S3's id for the upload.
    multipart: MultipartTarget | None = None


def _reservation(sub: str, name: str, value: Item) -> Reservation:
    fields = value["M"]
    multipart = None
    if "s3UploadId" in fields:
        multipart = MultipartTarget(
            fields["key"]["S"], fields["s3UploadId"]["S"], int(fields["partBytes"]["N"])
        )
    return Reservation(
        sub=sub,
        upload_id=name[len(RESERVATION_PREFIX) :],
        bytes=int(fields["bytes"]["N"]),
        expires_at=int(fields["expiresAt"]["N"]),
        multipart=multipart,
    )


# Ending reservations: their bytes leave reserved and committed and return to headroom.
_FREE_RESERVATIONS = (
    "ADD reservedBytes :freed, committedBytes :freed, "
    "headroomBytes :headroom, openReservations :open"
)


def _freed(reservations: Sequence[Reservation]) -> dict[str, Any]:
    """The values of ``_FREE_RESERVATIONS`` that end these reservations."""
    freed = sum(r.bytes for r in reservations)
    return {":freed": _n(-freed), ":headroom": _n(freed), ":open": _n(-len(reservations))}


def open_reservations(item: Item) -> list[Reservation]:
    sub = item.get("pk", {}).get("S", "")[len(user_pk("")) :]
    return [
        _reservation(sub, name, value)
        for name, value in item.items()
        if name.startswith(RESERVATION_PREFIX)
    ]


def _object_state(item: Item) -> ObjectState:
    return ObjectState(
        exists=item["exists"]["BOOL"],
        size=_int(item, "size"),
        etag=item["etag"]["S"],
        order=item["order"]["S"],
        event_time=item["eventTime"]["S"],
    )


class Ledger:
    def __init__(
        self,
        client: DynamoDBClient,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = settings.table_name
        self._settings = settings
        self._clock = clock
        self._alerts = AlertPolicy(settings.alert_threshold_percent, settings.alert_rearm_percent)

    def _usage_key(self, sub: str) -> dict[str, Any]:
        return {"pk": _s(user_pk(sub)), "sk": _s(USAGE_SK)}

    def usage_of(self, item: Item) -> Usage:
        used = _int(item, "usedBytes")
        reserved = _int(item, "reservedBytes")
        quota = _int(item, "quotaBytes") if "quotaBytes" in item else None
        quota = self._settings.default_quota_bytes if quota is None else quota
        return Usage(
            used_bytes=used,
            reserved_bytes=reserved,
            quota_bytes=quota,
            available_bytes=max(0, quota - used - reserved),
            object_count=_int(item, "objectCount"),
            percent_used=round(100 * used / quota, 2) if quota else (100.0 if used else 0.0),
        )

    def usage(self, sub: str) -> Usage:
        response = self._db.get_item(
            TableName=self._table, Key=self._usage_key(sub), ConsistentRead=True
        )
        return self.usage_of(response.get("Item", {}))

    def grant(
        self, sub: str, upload_id: str, size: int, multipart: MultipartTarget | None = None
    ) -> Usage:
        """Reserve ``size`` bytes for one upload, or refuse with QuotaExceeded (507).

        This is where the quota is decided: a single conditional update, so racing grants are
        serialised by DynamoDB and used + reserved never passes the quota.
        """
        now = int(self._clock())
        reservation: dict[str, Any] = {"bytes": _n(size)}
        if multipart is None:
            expires_at = now + self._settings.reservation_lifetime_seconds
        else:
            expires_at = now + self._settings.multipart_lifetime_seconds
            reservation.update(
                key=_s(multipart.key),
                s3UploadId=_s(multipart.s3_upload_id),
                partBytes=_n(multipart.part_bytes),
            )
        reservation["expiresAt"] = _n(expires_at)
        values: dict[str, Any] = {
            ":size": _n(size),
            ":neg": _n(-size),
            ":one": _n(1),
            ":max": _n(MAX_OPEN_RESERVATIONS),
            ":res": {"M": reservation},
            ":shard": _s(str(int(upload_id[:2], 16) % EXPIRY_SHARDS)),
            ":exp": _n(expires_at),
            ":now": _n(now),
        }
        fits = "(attribute_exists(quotaBytes) AND headroomBytes >= :size)"
        limit = self._settings.default_quota_bytes - size
        if limit >= 0:
            # A file larger than the default quota can only fit a user with their own quota.
            values[":limit"] = _n(limit)
            fits = (
                f"({fits} OR (attribute_not_exists(quotaBytes) AND "
                "(attribute_not_exists(committedBytes) OR committedBytes <= :limit)))"
            )
        condition = (
            "attribute_not_exists(#res) AND "
            "(attribute_not_exists(openReservations) OR openReservations < :max) AND "
            f"{fits}"
        )
        for attempt in range(_ATTEMPTS):
            try:
                response = self._db.update_item(
                    TableName=self._table,
                    Key=self._usage_key(sub),
                    UpdateExpression=(
                        "SET #res = :res, expiryShard = :shard, "
                        "expiresAt = if_not_exists(expiresAt, :exp), updatedAt = :now "
                        "ADD reservedBytes :size, committedBytes :size, headroomBytes :neg, "
                        "openReservations :one"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#res": RESERVATION_PREFIX + upload_id},
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return self.usage_of(response["Attributes"])
            except self._db.exceptions.ConditionalCheckFailedException as refused:
                raise self._refusal(cast(Item, refused.response.get("Item", {})), size) from None
            except self._db.exceptions.TransactionConflictException:
                # An event transaction holds the item; botocore does not retry this itself.
                _backoff(attempt)
        raise RuntimeError(f"grant for {sub} kept conflicting with event transactions")

    def _refusal(self, item: Item, size: int) -> Exception:
        if _int(item, "openReservations") >= MAX_OPEN_RESERVATIONS:
            return Conflict(
                f"{MAX_OPEN_RESERVATIONS} uploads are already in progress; finish or wait for "
                "some of them before starting another."
            )
        usage = self.usage_of(item)
        return QuotaExceeded(
            used_bytes=usage.used_bytes,
            reserved_bytes=usage.reserved_bytes,
            quota_bytes=usage.quota_bytes,
            requested_bytes=size,
        )

    def set_quota(self, sub: str, quota_bytes: int | None) -> None:
        """Give a user their own quota, or with None return them to the default."""
        now = _n(int(self._clock()))
        if quota_bytes is None:
            self._db.update_item(
                TableName=self._table,
                Key=self._usage_key(sub),
                UpdateExpression="REMOVE quotaBytes, headroomBytes SET updatedAt = :now",
                ExpressionAttributeValues={":now": now},
            )
            return
        self._db.update_item(
            TableName=self._table,
            Key=self._usage_key(sub),
            UpdateExpression=(
                "SET quotaBytes = :q, headroomBytes = :q - if_not_exists(committedBytes, :zero), "
                "updatedAt = :now"
            ),
            ExpressionAttributeValues={":q": _n(quota_bytes), ":zero": _n(0), ":now": now},
        )

    def apply_events(self, events: Iterable[ObjectEvent]) -> Applied:
        """Apply S3 object events exactly once, and note users who crossed an alert level.

        Reads every touched register and usage item in one batch, then writes one transaction
        per user. A user whose registers moved meanwhile is re-read and re-planned.
        """
        by_user: dict[str, list[ObjectEvent]] = {}
        for event in events:
            by_user.setdefault(event.owner.sub, []).append(event)
        applied = Applied()
        if not by_user:
            return applied
        stored = self._read(by_user)
        for sub, user_events in by_user.items():
            changes = self._apply_user(sub, user_events, stored)
            if changes is None:
                applied.failed.add(sub)
                continue
            try:
                before = stored.get((user_pk(sub), USAGE_SK), {})
                crossing = self._track_alert_level(sub, before, changes.used_delta)
            except AwsError:
                # The usage is applied; only the warning is lost, and the next change retries it.
                logger.exception("could not record the alert level of user %s", sub)
                continue
            if crossing is not None:
                applied.crossings.append(crossing)
        return applied

    def _apply_user(
        self, sub: str, events: Sequence[ObjectEvent], stored: dict[tuple[str, str], Item]
    ) -> UserChanges | None:
        """Writes one user's changes, re-reading after a conflict; None if it cannot."""
        for attempt in range(_ATTEMPTS):
            changes = self._plan(sub, events, stored)
            try:
                self.write(changes)
                return changes
            except (
                self._db.exceptions.TransactionCanceledException,
                self._db.exceptions.ConditionalCheckFailedException,
            ):
                # Another writer moved these registers or reservations since the read.
                _backoff(attempt)
                stored.update(self._read({sub: events}))
            except AwsError:
                logger.exception("could not apply events for user %s", sub)
                return None
        logger.error("events for user %s kept conflicting", sub)
        return None

    def _track_alert_level(self, sub: str, before: Item, used_delta: int) -> Crossing | None:
        """Records a move across an alert level; a Crossing when this call raised the level.

        The usage read before the write plus the delta only suggests a move; the conditional
        update on the real ``usedBytes`` decides, so concurrent batches announce a level once.
        """
        if used_delta == 0:
            return None
        policy = self._alerts
        quota = self.usage_of(before).quota_bytes
        used = _int(before, "usedBytes") + used_delta
        stored = _int(before, "alertLevel")
        level = policy.level(used, quota)
        if level > stored:
            condition = (
                "(attribute_not_exists(alertLevel) OR alertLevel < :level) AND usedBytes >= :mark"
            )
            mark = policy.floor_bytes(level, quota)
        elif level < stored and used < policy.rearm_bytes(stored, quota):
            condition = "alertLevel > :level AND usedBytes < :mark"
            mark = policy.rearm_bytes(stored, quota)
        else:
            return None
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._usage_key(sub),
                UpdateExpression="SET alertLevel = :level",
                ConditionExpression=condition,
                ExpressionAttributeValues={":level": _n(level), ":mark": _n(mark)},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return Crossing(sub, level, used, quota) if level > stored else None

    def _read(self, by_user: Mapping[str, Sequence[ObjectEvent]]) -> dict[tuple[str, str], Item]:
        keys = {(user_pk(sub), USAGE_SK) for sub in by_user}
        keys.update((user_pk(e.owner.sub), object_sk(e.key)) for es in by_user.values() for e in es)
        found: dict[tuple[str, str], Item] = {}
        pending: list[dict[str, Any]] = [{"pk": _s(pk), "sk": _s(sk)} for pk, sk in sorted(keys)]
        attempt = 0
        while pending:
            chunk, pending = pending[:MAX_BATCH_GET_KEYS], pending[MAX_BATCH_GET_KEYS:]
            response = self._db.batch_get_item(
                RequestItems={self._table: {"Keys": chunk, "ConsistentRead": True}}
            )
            for item in response.get("Responses", {}).get(self._table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
            if unprocessed:
                pending.extend(unprocessed["Keys"])
                _backoff(attempt)
                attempt += 1
        return found

    def _plan(
        self, sub: str, events: Sequence[ObjectEvent], stored: Mapping[tuple[str, str], Item]
    ) -> UserChanges:
        pk = user_pk(sub)
        registers = {
            e.key: _object_state(stored[(pk, object_sk(e.key))])
            for e in events
            if (pk, object_sk(e.key)) in stored
        }
        usage_item = stored.get((pk, USAGE_SK), {})
        reservations = {r.upload_id: r.bytes for r in open_reservations(usage_item)}
        return plan_user_changes(sub, events, registers, reservations)

    def write(self, changes: UserChanges) -> None:
        """Writes one user's changes; each register is conditioned on the state it replaces."""
        if changes.is_empty:
            return
        now = int(self._clock())
        pk = user_pk(changes.sub)
        per_chunk = MAX_TRANSACTION_ITEMS - 1
        chunks = [
            changes.objects[i : i + per_chunk] for i in range(0, len(changes.objects), per_chunk)
        ]
        for index, chunk in enumerate(chunks or [()]):
            part = UserChanges(changes.sub, chunk, changes.released if index == 0 else {})
            items: list[Any] = [{"Put": self._register_put(pk, c, now)} for c in chunk]
            items.append({"Update": self._usage_update(part, now)})
            if len(items) == 1:
                self._db.update_item(**items[0]["Update"])
            else:
                self._db.transact_write_items(TransactItems=items)

    def _register_put(self, pk: str, change: ObjectChange, now: int) -> dict[str, Any]:
        after = change.after
        item: Item = {
            "pk": _s(pk),
            "sk": _s(object_sk(change.key)),
            "exists": {"BOOL": after.exists},
            "size": _n(after.size),
            "etag": _s(after.etag),
            "order": _s(after.order),
            "eventTime": _s(after.event_time),
            "stamp": _s(after.stamp),
        }
        if not after.exists:
            item["ttl"] = _n(now + TOMBSTONE_SECONDS)
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if change.before is None:
            put["ConditionExpression"] = "attribute_not_exists(sk)"
        else:
            put["ConditionExpression"] = "stamp = :before"
            put["ExpressionAttributeValues"] = {":before": _s(change.before.stamp)}
        return put

    def _usage_update(self, changes: UserChanges, now: int) -> dict[str, Any]:
        committed = changes.used_delta + changes.reserved_delta
        names = {f"#r{i}": RESERVATION_PREFIX + uid for i, uid in enumerate(changes.released)}
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._usage_key(changes.sub),
            "UpdateExpression": (
                "SET updatedAt = :now "
                + (f"REMOVE {', '.join(names)} " if names else "")
                + "ADD usedBytes :used, reservedBytes :reserved, committedBytes :committed, "
                "headroomBytes :headroom, objectCount :count, openReservations :open"
            ),
            "ExpressionAttributeValues": {
                ":now": _n(now),
                ":used": _n(changes.used_delta),
                ":reserved": _n(changes.reserved_delta),
                ":committed": _n(committed),
                ":headroom": _n(-committed),
                ":count": _n(changes.object_count_delta),
                ":open": _n(-len(names)),
            },
        }
        if names:
            update["ExpressionAttributeNames"] = names
            update["ConditionExpression"] = " AND ".join(f"attribute_exists({n})" for n in names)
        return update

    def registers(self, sub: str) -> dict[str, ObjectState]:
        """Every object register of a user, tombstones included."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :obj)",
            ExpressionAttributeValues={":pk": _s(user_pk(sub)), ":obj": _s(object_sk(""))},
            ConsistentRead=True,
        )
        return {
            item["sk"]["S"][len(object_sk("")) :]: _object_state(item)
            for page in pages
            for item in page.get("Items", [])
        }

    def usage_item(self, sub: str) -> Item:
        response = self._db.get_item(
            TableName=self._table, Key=self._usage_key(sub), ConsistentRead=True
        )
        return response.get("Item", {})

    def users(self) -> set[str]:
        """Every user with a usage item (a scan: for the scheduled reconcile only)."""
        pages = self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="sk = :usage",
            ExpressionAttributeValues={":usage": _s(USAGE_SK)},
            ProjectionExpression="pk",
        )
        prefix = user_pk("")
        return {item["pk"]["S"][len(prefix) :] for page in pages for item in page["Items"]}

    def correct_counters(self, sub: str, seen: Item, used: int, object_count: int) -> int:
        """Sets a user's counters to what their registers and reservations say.

        Conditioned on the counters read in ``seen`` (read before the registers), so any write
        in between makes this a no-op for the next run to retry. Returns the bytes corrected.
        """
        reservations = open_reservations(seen)
        reserved = sum(r.bytes for r in reservations)
        truth = {
            "usedBytes": used,
            "objectCount": object_count,
            "reservedBytes": reserved,
            "openReservations": len(reservations),
        }
        old = {name: _int(seen, name) for name in truth}
        if old == truth and _int(seen, "committedBytes") == used + reserved:
            return 0
        values: dict[str, Any] = {":committed": _n(used + reserved)}
        conditions = []
        for index, (name, value) in enumerate(truth.items()):
            values[f":new{index}"] = _n(value)
            values[f":old{index}"] = _n(old[name])
            missing = f"attribute_not_exists({name}) OR " if old[name] == 0 else ""
            conditions.append(f"({missing}{name} = :old{index})")
        assignments = [f"{name} = :new{i}" for i, name in enumerate(truth)]
        assignments.append("committedBytes = :committed")
        if "quotaBytes" in seen:
            assignments.append("headroomBytes = quotaBytes - :committed")
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._usage_key(sub),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeValues=values,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return 0
        return abs(used - old["usedBytes"]) + abs(reserved - old["reservedBytes"])

    def reservation(self, sub: str, upload_id: str) -> Reservation | None:
        name = RESERVATION_PREFIX + upload_id
        response = self._db.get_item(
            TableName=self._table,
            Key=self._usage_key(sub),
            ConsistentRead=True,
            ProjectionExpression="#r",
            ExpressionAttributeNames={"#r": name},
        )
        value = cast(Item, response.get("Item", {})).get(name)
        return None if value is None else _reservation(sub, name, value)

    def release(self, reservation: Reservation) -> bool:
        """Ends one reservation now (an aborted upload); False if it had already ended."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._usage_key(reservation.sub),
                UpdateExpression=f"REMOVE #r {_FREE_RESERVATIONS}",
                ConditionExpression="attribute_exists(#r)",
                ExpressionAttributeNames={"#r": RESERVATION_PREFIX + reservation.upload_id},
                ExpressionAttributeValues=_freed([reservation]),
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_expired(self) -> list[Reservation]:
        """Release every reservation past its expiry, and say which.

        Driven by a schedule, not DynamoDB TTL, whose deletions may lag by days.
        """
        now = int(self._clock())
        released: list[Reservation] = []
        for shard in range(EXPIRY_SHARDS):
            pages = self._db.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=EXPIRY_INDEX,
                KeyConditionExpression="expiryShard = :shard AND expiresAt <= :now",
                ExpressionAttributeValues={":shard": _s(str(shard)), ":now": _n(now)},
            )
            for page in pages:
                for item in page.get("Items", []):
                    released += self._sweep(item, now)
        return released

    def _sweep(self, item: Item, now: int) -> list[Reservation]:
        """Release one user's expired reservations, re-reading if a writer got there first."""
        key = {"pk": item["pk"], "sk": item["sk"]}
        for attempt in range(_ATTEMPTS):
            reservations = open_reservations(item)
            expired = [r for r in reservations if r.expires_at <= now]
            remaining = [r for r in reservations if r.expires_at > now]
            names = {f"#r{i}": RESERVATION_PREFIX + r.upload_id for i, r in enumerate(expired)}
            removals = list(names)
            values = {":seen": _n(_int(item, "openReservations")), **_freed(expired)}
            if remaining:
                marker = "SET expiresAt = :next "
                values[":next"] = _n(min(r.expires_at for r in remaining))
            else:
                marker = ""
                removals += ["expiryShard", "expiresAt"]
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": f"{marker}REMOVE {', '.join(removals)} {_FREE_RESERVATIONS}",
                # Any grant or release since the read changes the count: start over.
                "ConditionExpression": "openReservations = :seen",
                "ExpressionAttributeValues": values,
            }
            if names:
                update["ExpressionAttributeNames"] = names
            try:
                self._db.update_item(**update)
                return expired
            except (
                self._db.exceptions.ConditionalCheckFailedException,
                self._db.exceptions.TransactionConflictException,
            ):
                _backoff(attempt)
                item = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
                    "Item", {}
                )
                if "expiresAt" not in item:
                    return []
        logger.error("could not sweep reservations of %s", key["pk"]["S"])
        return []
