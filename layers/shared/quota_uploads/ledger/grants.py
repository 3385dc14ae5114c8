"""Grants and reservations: where the quota is decided.

A grant is one conditional ``UpdateItem`` on the user's usage item: it checks the quota, adds
the bytes to the bucket of reservations ending when this one does, and leaves its mark in a
grant slot, all in one request with no read-then-write window. DynamoDB conditions cannot add
two attributes, so the item also keeps ``committedBytes`` (used + reserved) and, for users with
their own quota, ``headroomBytes`` (quota - committed); every change moves all of them together.

The item's size (so the cost of every write to it) does not depend on how many uploads are open:
a single PUT leaves no record of its own, because its upload id carries its terms
(``keys.UploadTerms``); a multipart upload adds one small ``RES#`` item for its S3 upload id.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from quota_uploads.keys import (
    UploadTerms,
    issued_terms,
    new_upload_id,
    object_sk,
    upload_terms,
    user_pk,
    user_prefix,
)
from quota_uploads.ledger.model import (
    InsufficientQuota,
    MultipartTarget,
    Reservation,
    TooManyCancelled,
    TooManyUploads,
    UsageState,
)
from quota_uploads.ledger.table import (
    ATTEMPTS,
    FREE_RESERVATIONS,
    MAX_CANCEL_MARKS,
    Item,
    Table,
    backoff,
    bucket_end,
    bucket_names,
    buckets,
    cancel_mark,
    cancel_marks,
    expiry_shard,
    freed,
    grant_slot,
    n,
    number,
    record_key,
    s,
)

logger = logging.getLogger(__name__)

# The grant keeps expiresAt at the earliest bucket end. An update expression has no min(), so a
# grant assumes the usual case (an earlier bucket is open, or none) and switches to lowering
# expiresAt only when the item it was refused on shows a later one.
_KEEP_EXPIRY = (
    "expiresAt = if_not_exists(expiresAt, :end)",
    "(attribute_not_exists(expiresAt) OR expiresAt <= :end)",
)
_LOWER_EXPIRY = ("expiresAt = :end", "expiresAt > :end")


class Grants:
    def __init__(self, table: Table) -> None:
        self._table = table

    def new_upload_id(self, size: int, multipart: bool) -> str:
        """An upload id whose terms reserve ``size`` bytes until the end of its bucket."""
        settings = self._table.settings
        lifetime = (
            settings.multipart_lifetime_seconds
            if multipart
            else settings.reservation_lifetime_seconds
        )
        end = bucket_end(self._table.now() + lifetime, lifetime)
        return new_upload_id(UploadTerms(size, end, multipart))

    def grant(
        self, sub: str, upload_id: str, multipart: MultipartTarget | None = None
    ) -> UsageState:
        """Reserve the upload's bytes, or refuse with InsufficientQuota or TooManyUploads.

        Racing grants are serialised by DynamoDB, so used + reserved never passes the quota; the
        same grant sent twice (a retry after a lost answer) is recognised by its slot mark and
        answered, not counted again.
        """
        terms = issued_terms(upload_id)
        usage = self._reserve(sub, upload_id, terms)
        if multipart is not None:
            self._record_multipart(sub, upload_id, terms, multipart)
        return usage

    def _reserve(self, sub: str, upload_id: str, terms: UploadTerms) -> UsageState:
        table = self._table
        settings = table.settings
        slot, tag = grant_slot(upload_id)
        size_attr, count_attr = bucket_names(terms.expires_at)
        names = {"#g": slot, "#b": size_attr, "#c": count_attr}
        values: dict[str, Any] = {
            ":size": n(terms.size),
            ":neg": n(-terms.size),
            ":one": n(1),
            ":max": n(settings.max_open_uploads),
            ":tag": s(tag),
            ":end": n(terms.expires_at),
            ":shard": s(expiry_shard(sub)),
            ":now": n(table.now()),
        }
        fits = "(attribute_exists(quotaBytes) AND headroomBytes >= :size)"
        limit = settings.default_quota_bytes - terms.size
        if limit >= 0:
            # A file larger than the default quota can only fit a user with their own quota.
            values[":limit"] = n(limit)
            fits = (
                f"({fits} OR (attribute_not_exists(quotaBytes) AND "
                "(attribute_not_exists(committedBytes) OR committedBytes <= :limit)))"
            )
        condition = (
            "(attribute_not_exists(#g) OR #g <> :tag) AND "
            "(attribute_not_exists(openReservations) OR openReservations < :max) AND "
            f"{fits}"
        )
        expiry = _KEEP_EXPIRY
        for attempt in range(ATTEMPTS):
            try:
                response = table.db.update_item(
                    TableName=table.name,
                    Key=table.usage_key(sub),
                    UpdateExpression=(
                        f"SET #g = :tag, updatedAt = :now, {expiry[0]}, "
                        "expiryShard = if_not_exists(expiryShard, :shard) "
                        "ADD reservedBytes :size, committedBytes :size, headroomBytes :neg, "
                        "openReservations :one, grantCount :one, #b :size, #c :one"
                    ),
                    ConditionExpression=f"{condition} AND {expiry[1]}",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return table.usage_state(response["Attributes"])
            except table.db.exceptions.ConditionalCheckFailedException as refused:
                item = cast(Item, refused.response.get("Item", {}))
                if item.get(slot, {}).get("S") == tag:
                    # Our own earlier attempt went through and its answer was lost.
                    return table.usage_state(item)
                if number(item, "openReservations") >= settings.max_open_uploads:
                    raise TooManyUploads(settings.max_open_uploads) from None
                if not self._fits(item, terms.size):
                    raise InsufficientQuota(table.usage_state(item), terms.size) from None
                lower = "expiresAt" in item and number(item, "expiresAt") > terms.expires_at
                expiry = _LOWER_EXPIRY if lower else _KEEP_EXPIRY
            except table.db.exceptions.TransactionConflictException:
                # An event transaction holds the item; botocore does not retry this itself.
                backoff(attempt)
        raise RuntimeError(f"grant for {sub} kept conflicting with other writers")

    def _fits(self, item: Item, size: int) -> bool:
        """The grant's quota condition, evaluated on an item it was refused on."""
        if "quotaBytes" in item:
            return number(item, "headroomBytes") >= size
        return number(item, "committedBytes") <= self._table.settings.default_quota_bytes - size

    def _record_multipart(
        self, sub: str, upload_id: str, terms: UploadTerms, target: MultipartTarget
    ) -> None:
        """Keeps where the parts go. A crash before this leaves reserved bytes that expire."""
        table = self._table
        item: Item = {
            **record_key(sub, upload_id),
            "objectKey": s(target.key),
            "s3UploadId": s(target.s3_upload_id),
            "partBytes": n(target.part_bytes),
            "expiresAt": n(terms.expires_at),
            "expiryShard": s(expiry_shard(sub)),
        }
        try:
            table.db.put_item(TableName=table.name, Item=item)
        except Exception:
            self._free(sub, terms, None)
            raise

    def reservation(self, sub: str, upload_id: str) -> Reservation | None:
        """The caller's open multipart upload; None for anything else."""
        terms = upload_terms(upload_id)
        if terms is None or not terms.multipart:
            return None
        table = self._table
        response = table.db.get_item(
            TableName=table.name,
            Key=record_key(sub, upload_id),
            ConsistentRead=True,
        )
        item = cast(Item, response.get("Item"))
        if item is None:
            return None
        target = MultipartTarget(
            item["objectKey"]["S"], item["s3UploadId"]["S"], number(item, "partBytes")
        )
        return Reservation(sub, upload_id, terms.size, terms.expires_at, target)

    def cancel(self, sub: str, upload_id: str) -> bool:
        """Ends a single PUT's reservation before its object arrives; False if there is none
        (it arrived, was cancelled or swept, or was never the caller's).

        Its share leaves the bucket and a mark stays (``table.cancel_mark``), so an object that
        still arrives is charged without a second release. Whether it arrived is read from its
        registers; the write is conditioned on the bucket as read, so an arrival (or a grant)
        landing in between makes it read again.
        """
        terms = upload_terms(upload_id)
        if terms is None or terms.multipart:
            return False
        table = self._table
        mark = cancel_mark(upload_id)
        size_attr, count_attr = bucket_names(terms.expires_at)
        for attempt in range(ATTEMPTS):
            item = table.usage_item(sub)
            bucket = buckets(item).get(terms.expires_at)
            if bucket is None or bucket.count < 1 or mark in item or self._arrived(sub, upload_id):
                return False
            if len(cancel_marks(item)) >= MAX_CANCEL_MARKS:
                raise TooManyCancelled(MAX_CANCEL_MARKS)
            try:
                table.db.update_item(
                    TableName=table.name,
                    Key=table.usage_key(sub),
                    UpdateExpression=(
                        f"SET #x = :end ADD #b :freed, #c :ended, {FREE_RESERVATIONS}"
                    ),
                    ConditionExpression="#c = :count AND attribute_not_exists(#x)",
                    ExpressionAttributeNames={"#b": size_attr, "#c": count_attr, "#x": mark},
                    ExpressionAttributeValues={
                        **freed(terms.size, 1),
                        ":end": n(terms.expires_at),
                        ":count": n(bucket.count),
                    },
                )
                return True
            except table.db.exceptions.ConditionalCheckFailedException:
                backoff(attempt)
        raise RuntimeError(f"cancelling {upload_id} kept conflicting with other writers")

    def _arrived(self, sub: str, upload_id: str) -> bool:
        """Whether any event of the upload's object was applied (its register, even a
        tombstone, is kept for a month: longer than any reservation)."""
        table = self._table
        found = table.db.query(
            TableName=table.name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :key)",
            ExpressionAttributeValues={
                ":pk": s(user_pk(sub)),
                ":key": s(object_sk(f"{user_prefix(sub)}{upload_id}/")),
            },
            ProjectionExpression="sk",
            ConsistentRead=True,
            Limit=1,
        )
        return bool(found.get("Items"))

    def release(self, reservation: Reservation) -> bool:
        """Ends a multipart upload's reservation now (an abort); False if it had already ended."""
        terms = issued_terms(reservation.upload_id)
        record = record_key(reservation.sub, reservation.upload_id)
        return self._free(reservation.sub, terms, record)

    def _free(self, sub: str, terms: UploadTerms, record: Item | None) -> bool:
        """Takes one upload's bytes out of its bucket and, if given, deletes its record.

        If the sweeper ended the bucket first, only the record goes.
        """
        table = self._table
        size_attr, count_attr = bucket_names(terms.expires_at)
        update: dict[str, Any] = {
            "TableName": table.name,
            "Key": table.usage_key(sub),
            "UpdateExpression": f"ADD #b :freed, #c :ended, {FREE_RESERVATIONS}",
            "ConditionExpression": "#c >= :one",
            "ExpressionAttributeNames": {"#b": size_attr, "#c": count_attr},
            "ExpressionAttributeValues": {**freed(terms.size, 1), ":one": n(1)},
        }
        if record is None:
            try:
                table.db.update_item(**update)
            except table.db.exceptions.ConditionalCheckFailedException:
                return False
            return True
        delete: dict[str, Any] = {
            "TableName": table.name,
            "Key": record,
            "ConditionExpression": "attribute_exists(sk)",
        }
        try:
            items: list[Any] = [{"Delete": delete}, {"Update": update}]
            table.db.transact_write_items(TransactItems=items)
        except table.db.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            if codes[:1] == ["ConditionalCheckFailed"]:
                return False
            if codes[1:] != ["ConditionalCheckFailed"]:
                raise
            try:
                table.db.delete_item(**delete)
            except table.db.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def set_quota(self, sub: str, quota_bytes: int | None) -> None:
        """Give a user their own quota, or with None return them to the default."""
        table = self._table
        # Every usage item carries its shard, which lists its user for the daily audit.
        values = {":now": n(table.now()), ":shard": s(expiry_shard(sub))}
        stamp = "updatedAt = :now, expiryShard = if_not_exists(expiryShard, :shard)"
        if quota_bytes is None:
            table.db.update_item(
                TableName=table.name,
                Key=table.usage_key(sub),
                UpdateExpression=f"REMOVE quotaBytes, headroomBytes SET {stamp}",
                ExpressionAttributeValues=values,
            )
            return
        table.db.update_item(
            TableName=table.name,
            Key=table.usage_key(sub),
            UpdateExpression=(
                "SET quotaBytes = :q, headroomBytes = :q - if_not_exists(committedBytes, :zero), "
                + stamp
            ),
            ExpressionAttributeValues={**values, ":q": n(quota_bytes), ":zero": n(0)},
        )
