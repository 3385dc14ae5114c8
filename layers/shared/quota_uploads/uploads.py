"""The use cases behind the HTTP API: start an upload, list files, delete a file, set a quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from quota_uploads.config import MAX_SINGLE_PUT_BYTES, Settings
from quota_uploads.errors import InvalidRequest, NotFound, PayloadTooLarge
from quota_uploads.keys import is_valid_sub, new_upload_id, object_key, owner_of, user_prefix
from quota_uploads.ledger import Ledger
from quota_uploads.models import FileItem, FileList, UploadGrant, UploadRequest, Usage, UserQuota
from quota_uploads.presign import presign_put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Uploads:
    def __init__(self, settings: Settings, ledger: Ledger, s3: S3Client) -> None:
        self._settings = settings
        self._ledger = ledger
        self._s3 = s3

    def start(self, sub: str, request: UploadRequest) -> UploadGrant:
        if request.size > MAX_SINGLE_PUT_BYTES:
            raise PayloadTooLarge(
                f"A single upload can be at most {MAX_SINGLE_PUT_BYTES} bytes (5 GiB); "
                "larger files need a multipart upload."
            )
        allowed = self._settings.allowed_content_types
        media_type = request.content_type.split(";")[0].strip().lower()
        if allowed and media_type not in allowed:
            raise InvalidRequest(
                f"contentType {media_type} is not accepted; allowed: {', '.join(sorted(allowed))}"
            )
        upload_id = new_upload_id()
        key = object_key(sub, upload_id, request.filename)
        usage = self._ledger.grant(sub, upload_id, request.size)
        expiry = self._settings.url_expiry_seconds
        expires_at = datetime.now(UTC) + timedelta(seconds=expiry)
        put = presign_put(
            self._s3,
            bucket=self._settings.bucket_name,
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
            expires_at=expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            usage=usage,
        )

    def usage(self, sub: str) -> Usage:
        return self._ledger.usage(sub)

    def list_files(self, sub: str, limit: int, next_token: str | None) -> FileList:
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        params = {
            "Bucket": self._settings.bucket_name,
            "Prefix": user_prefix(sub),
            "MaxKeys": limit,
        }
        if next_token:
            params["ContinuationToken"] = next_token
        try:
            page = self._s3.list_objects_v2(**params)  # type: ignore[arg-type]
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidArgument":
                raise InvalidRequest("nextToken is not a token this API issued") from None
            raise
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
        return FileList(files=files, next_token=page.get("NextContinuationToken"))

    def delete_file(self, sub: str, key: str) -> None:
        """Delete one of the caller's objects; the usage function frees its bytes from the event.

        Anything not the caller's, including another user's object, is reported as not found so
        the API does not confirm which keys exist.
        """
        owner = owner_of(key)
        if owner is None or owner.sub != sub:
            raise NotFound("no such file")
        try:
            self._s3.head_object(Bucket=self._settings.bucket_name, Key=key)
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise NotFound("no such file") from None
            raise
        self._s3.delete_object(Bucket=self._settings.bucket_name, Key=key)

    def set_quota(self, user_id: str, quota_bytes: int | None) -> UserQuota:
        if not is_valid_sub(user_id):
            raise InvalidRequest("userId is not a valid user id")
        self._ledger.set_quota(user_id, quota_bytes)
        is_default = quota_bytes is None
        quota = self._settings.default_quota_bytes if quota_bytes is None else quota_bytes
        return UserQuota(user_id=user_id, quota_bytes=quota, is_default=is_default)
