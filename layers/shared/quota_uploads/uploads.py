"""The use cases behind the HTTP API: start an upload, list files, delete a file, set a quota."""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from quota_uploads.config import (
    DOWNLOAD_URL_SECONDS,
    MAX_OBJECT_BYTES,
    MAX_SINGLE_PUT_BYTES,
    Settings,
)
from quota_uploads.errors import (
    ClientError,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
)
from quota_uploads.keys import (
    MAX_OBJECT_KEY_BYTES,
    is_upload_id,
    is_valid_sub,
    issued_terms,
    object_key,
    owner_of,
    upload_terms,
    user_prefix,
)
from quota_uploads.ledger import (
    InsufficientQuota,
    Ledger,
    MultipartTarget,
    Reservation,
    Swept,
    TooManyCancelled,
    TooManyUploads,
)
from quota_uploads.models import (
    CompletedUpload,
    CompleteRequest,
    FileDownload,
    FileItem,
    FileList,
    MultipartGrant,
    SignedPart,
    SignedParts,
    UploadedPart,
    UploadedParts,
    UploadGrant,
    UploadRequest,
    Usage,
    UserQuota,
)
from quota_uploads.multipart import MAX_PARTS, PartPlan
from quota_uploads.presign import UploadSigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _token_of_key(key: str) -> str:
    """A page token: the last key listed, so it names nothing the caller could not list."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _key_of_token(token: str, prefix: str) -> str:
    """The key a page token continues after; a token this API could not have issued is a 400.

    S3's own continuation tokens are opaque, and moto fails on a forged one with a 500: ours are
    checked here, before S3 sees anything.
    """
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key.startswith(prefix) or len(key.encode()) > MAX_OBJECT_KEY_BYTES:
        raise InvalidRequest("nextToken is not a token this API issued")
    return key


def _ends_at(upload_id: str) -> datetime:
    """When an upload's reservation ends, as its id says."""
    return datetime.fromtimestamp(issued_terms(upload_id).expires_at, UTC)


class Uploads:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        s3: Callable[[], S3Client],
        signer: UploadSigner,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        # Made on first use: granting a single PUT needs no S3 client at all.
        self._s3 = s3
        self._signer = signer

    def start(self, sub: str, request: UploadRequest) -> UploadGrant | MultipartGrant:
        if request.size > MAX_OBJECT_BYTES:
            raise PayloadTooLarge(f"An object can be at most {MAX_OBJECT_BYTES} bytes (5 TiB).")
        self._check_content_type(request)
        multipart = request.multipart
        if multipart is None:
            multipart = request.size > self._settings.multipart_threshold_bytes
        if request.size > MAX_SINGLE_PUT_BYTES and request.multipart is False:
            raise PayloadTooLarge(
                f"A single PUT carries at most {MAX_SINGLE_PUT_BYTES} bytes (5 GiB); "
                "larger files need a multipart upload."
            )
        if multipart or request.size > MAX_SINGLE_PUT_BYTES:
            return self._start_multipart(sub, request, self._part_plan(request))
        return self._start_single(sub, request)

    def _part_plan(self, request: UploadRequest) -> PartPlan:
        floor = self._settings.multipart_min_part_bytes
        if request.part_size is None:
            preferred = max(self._settings.multipart_part_bytes, floor)
            return PartPlan.for_size(request.size, preferred)
        plan = PartPlan(size=request.size, part_bytes=request.part_size)
        if request.part_size < floor and plan.part_count > 1:
            raise InvalidRequest(f"partSize must be at least {floor} bytes")
        if request.part_size > MAX_SINGLE_PUT_BYTES or plan.part_count > MAX_PARTS:
            raise InvalidRequest(
                f"partSize must be at most {MAX_SINGLE_PUT_BYTES} bytes and split the file "
                f"into at most {MAX_PARTS} parts"
            )
        return plan

    def _check_content_type(self, request: UploadRequest) -> None:
        allowed = self._settings.allowed_content_types
        media_type = request.content_type.split(";")[0].strip().lower()
        if allowed and media_type not in allowed:
            raise InvalidRequest(
                f"contentType {media_type} is not accepted; allowed: {', '.join(sorted(allowed))}"
            )

    def _grant(self, sub: str, upload_id: str, multipart: MultipartTarget | None = None) -> Usage:
        """The ledger's grant, its refusals told as the API tells them (507, 409)."""
        try:
            return Usage.of(self._ledger.grant(sub, upload_id, multipart))
        except InsufficientQuota as refused:
            raise QuotaExceeded(
                used_bytes=refused.used_bytes,
                reserved_bytes=refused.reserved_bytes,
                quota_bytes=refused.quota_bytes,
                requested_bytes=refused.requested_bytes,
            ) from None
        except TooManyUploads as refused:
            raise Conflict(
                f"{refused.limit} uploads are already in progress; finish or wait for some of "
                "them before starting another."
            ) from None

    def _start_single(self, sub: str, request: UploadRequest) -> UploadGrant:
        upload_id = self._ledger.new_upload_id(request.size)
        key = object_key(sub, upload_id, request.filename)
        usage = self._grant(sub, upload_id)
        expiry = self._settings.url_expiry_seconds
        expires_at = datetime.now(UTC) + timedelta(seconds=expiry)
        put = self._signer.put(
            key=key,
            size=request.size,
            content_type=request.content_type,
            checksum_sha256=request.checksum_sha256,
            expires_in=expiry,
        )
        return UploadGrant(
            upload_id=upload_id,
            key=key,
            url=put.url,
            headers=put.headers,
            expires_at=_iso(expires_at),
            usage=usage,
        )

    def _start_multipart(self, sub: str, request: UploadRequest, plan: PartPlan) -> MultipartGrant:
        """Opens the S3 multipart upload, then reserves the whole declared size for it.

        The upload is opened first so the ledger can keep its S3 id beside the reservation; a
        refused grant aborts it again.
        """
        upload_id = self._ledger.new_upload_id(request.size, multipart=True)
        key = object_key(sub, upload_id, request.filename)
        created = self._s3().create_multipart_upload(
            Bucket=self._settings.bucket_name, Key=key, ContentType=request.content_type
        )
        target = MultipartTarget(key, created["UploadId"], plan.part_bytes)
        try:
            usage = self._grant(sub, upload_id, target)
        except ClientError:
            self._abort_in_s3(key, target.s3_upload_id)
            raise
        return MultipartGrant(
            upload_id=upload_id,
            key=key,
            part_size=plan.part_bytes,
            part_count=plan.part_count,
            expires_at=_iso(_ends_at(upload_id)),
            usage=usage,
        )

    def _multipart(self, sub: str, upload_id: str) -> tuple[Reservation, MultipartTarget]:
        """The caller's open multipart upload, or 404 for anything else."""
        found = self._ledger.reservation(sub, upload_id) if is_upload_id(upload_id) else None
        if found is None:
            raise NotFound("no such multipart upload in progress")
        return found, found.multipart

    def sign_parts(self, sub: str, upload_id: str, part_numbers: list[int]) -> SignedParts:
        reservation, target = self._multipart(sub, upload_id)
        plan = PartPlan(size=reservation.bytes, part_bytes=target.part_bytes)
        outside = sorted(n for n in part_numbers if n > plan.part_count)
        if outside:
            raise InvalidRequest(f"this upload has parts 1 to {plan.part_count}, not {outside}")
        parts = []
        for number in dict.fromkeys(part_numbers):
            put = self._signer.part(
                key=target.key,
                s3_upload_id=target.s3_upload_id,
                part_number=number,
                size=plan.part_size(number),
                expires_in=self._settings.url_expiry_seconds,
            )
            parts.append(SignedPart(part_number=number, url=put.url, headers=put.headers))
        return SignedParts(parts=parts)

    def list_parts(self, sub: str, upload_id: str) -> UploadedParts:
        _, target = self._multipart(sub, upload_id)
        return UploadedParts(parts=self._uploaded_parts(target))

    def _uploaded_parts(self, target: MultipartTarget) -> list[UploadedPart]:
        pages = (
            self._s3()
            .get_paginator("list_parts")
            .paginate(
                Bucket=self._settings.bucket_name, Key=target.key, UploadId=target.s3_upload_id
            )
        )
        try:
            return [
                UploadedPart(
                    part_number=part["PartNumber"], size=part["Size"], etag=part["ETag"].strip('"')
                )
                for page in pages
                for part in page.get("Parts", [])
            ]
        except self._s3().exceptions.NoSuchUpload:
            raise NotFound("this multipart upload has expired or was aborted") from None

    def complete(self, sub: str, upload_id: str, request: CompleteRequest) -> CompletedUpload:
        """Completes a multipart upload once S3's own list of parts fits the reservation."""
        reservation, target = self._multipart(sub, upload_id)
        uploaded = {part.part_number: part for part in self._uploaded_parts(target)}
        total = sum(part.size for part in uploaded.values())
        if total > reservation.bytes:
            self.abort(sub, upload_id)
            raise PayloadTooLarge(
                f"The parts hold {total} bytes but {reservation.bytes} were reserved; "
                "the upload was aborted."
            )
        named = {part.part_number: part.etag.strip('"') for part in request.parts}
        missing = sorted(
            n for n, etag in named.items() if uploaded.get(n) is None or uploaded[n].etag != etag
        )
        if missing:
            raise InvalidRequest(f"parts {missing} were not uploaded with those ETags")
        try:
            completed = self._s3().complete_multipart_upload(
                Bucket=self._settings.bucket_name,
                Key=target.key,
                UploadId=target.s3_upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": f'"{named[n]}"'} for n in sorted(named)]
                },
            )
        except self._s3().exceptions.NoSuchUpload:
            # Aborted (or swept) since the parts were listed.
            raise NotFound("this multipart upload has expired or was aborted") from None
        size = sum(uploaded[n].size for n in named)
        return CompletedUpload(key=target.key, size=size, etag=completed["ETag"].strip('"'))

    def abort(self, sub: str, upload_id: str) -> None:
        """Cancels an upload. A multipart one is aborted in S3 first, so no part can complete
        after the reservation is gone; a single PUT's reservation ends at once (its URL stays
        valid, and an object PUT with it all the same is charged)."""
        terms = upload_terms(upload_id) if is_upload_id(upload_id) else None
        if terms is not None and not terms.multipart:
            try:
                cancelled = self._ledger.cancel(sub, upload_id)
            except TooManyCancelled as refused:
                raise Conflict(
                    f"{refused.limit} cancelled uploads are still within their reservation "
                    "time; this one's reservation ends on its own by its expiresAt."
                ) from None
            if not cancelled:
                raise NotFound("no such upload in progress")
            return
        reservation, target = self._multipart(sub, upload_id)
        self._abort_in_s3(target.key, target.s3_upload_id)
        self._ledger.release(reservation)

    def _abort_in_s3(self, key: str, s3_upload_id: str) -> None:
        with contextlib.suppress(self._s3().exceptions.NoSuchUpload):
            self._s3().abort_multipart_upload(
                Bucket=self._settings.bucket_name, Key=key, UploadId=s3_upload_id
            )

    def sweep(self, should_stop: Callable[[], bool] = lambda: False) -> Swept:
        """Releases expired reservations and aborts expired multipart uploads in S3."""
        return self._ledger.release_expired(self._abort_in_s3, should_stop)

    def usage(self, sub: str) -> Usage:
        return Usage.of(self._ledger.usage(sub))

    def list_files(self, sub: str, limit: int, next_token: str | None) -> FileList:
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        prefix = user_prefix(sub)
        start_after = prefix if next_token is None else _key_of_token(next_token, prefix)
        page = self._s3().list_objects_v2(
            Bucket=self._settings.bucket_name, Prefix=prefix, MaxKeys=limit, StartAfter=start_after
        )
        files = [
            FileItem(
                key=obj["Key"],
                filename=obj["Key"].rsplit("/", 1)[-1],
                size=obj["Size"],
                uploaded_at=obj["LastModified"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
                etag=obj["ETag"].strip('"'),
            )
            for obj in page.get("Contents", [])
        ]
        if page.get("IsTruncated") and files:
            return FileList(files=files, next_token=_token_of_key(files[-1].key))
        return FileList(files=files)

    def _own_object_size(self, sub: str, key: str) -> int:
        """The size of one of the caller's objects.

        Anything not the caller's, including another user's object, is reported as not found so
        the API does not confirm which keys exist.
        """
        owner = owner_of(key)
        if owner is None or owner.sub != sub:
            raise NotFound("no such file")
        try:
            head = self._s3().head_object(Bucket=self._settings.bucket_name, Key=key)
        except self._s3().exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise NotFound("no such file") from None
            raise
        return head["ContentLength"]

    def download(self, sub: str, key: str) -> FileDownload:
        """A short-lived URL downloading one of the caller's objects under its filename."""
        size = self._own_object_size(sub, key)
        filename = key.rsplit("/", 1)[-1]
        expires = datetime.now(UTC) + timedelta(seconds=DOWNLOAD_URL_SECONDS)
        url = self._signer.get(key=key, filename=filename, expires_in=DOWNLOAD_URL_SECONDS)
        return FileDownload(
            key=key, filename=filename, size=size, url=url, expires_at=_iso(expires)
        )

    def delete_file(self, sub: str, key: str) -> None:
        """Delete one of the caller's objects; the usage function frees its bytes from the event."""
        self._own_object_size(sub, key)
        self._s3().delete_object(Bucket=self._settings.bucket_name, Key=key)
        # Should the removal's event be lost, the user's next drift check frees the space.
        self._ledger.touch(sub)

    def set_quota(self, user_id: str, quota_bytes: int | None) -> UserQuota:
        if not is_valid_sub(user_id):
            raise InvalidRequest("userId is not a valid user id")
        self._ledger.set_quota(user_id, quota_bytes)
        is_default = quota_bytes is None
        quota = self._settings.default_quota_bytes if quota_bytes is None else quota_bytes
        return UserQuota(user_id=user_id, quota_bytes=quota, is_default=is_default)
