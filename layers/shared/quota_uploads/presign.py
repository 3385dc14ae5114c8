"""Presigned S3 PUT URLs that bind the exact size, type and (optionally) checksum of an upload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class PresignedPut:
    url: str
    headers: dict[str, str]


def presign_put(
    s3: S3Client,
    *,
    bucket: str,
    key: str,
    size: int,
    content_type: str,
    checksum_sha256: str | None,
    expires_in: int,
) -> PresignedPut:
    """A SigV4 URL whose signature covers Content-Length and Content-Type.

    S3 rejects a body of any other length, so the declared size the quota reserved is the most
    that can land. ``If-None-Match: *`` makes S3 refuse to overwrite, so the URL can only create.
    """
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "ContentLength": size,
        "ContentType": content_type,
        "IfNoneMatch": "*",
    }
    headers = {"Content-Type": content_type, "Content-Length": str(size), "If-None-Match": "*"}
    if checksum_sha256 is not None:
        params["ChecksumSHA256"] = checksum_sha256
        headers["x-amz-checksum-sha256"] = checksum_sha256
    url = s3.generate_presigned_url(
        "put_object", Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
    )
    return PresignedPut(url=url, headers=headers)


def presign_part(
    s3: S3Client,
    *,
    bucket: str,
    key: str,
    s3_upload_id: str,
    part_number: int,
    size: int,
    expires_in: int,
) -> PresignedPut:
    """A SigV4 URL for one part, binding its exact length so no part can carry more."""
    url = s3.generate_presigned_url(
        "upload_part",
        Params={
            "Bucket": bucket,
            "Key": key,
            "UploadId": s3_upload_id,
            "PartNumber": part_number,
            "ContentLength": size,
        },
        ExpiresIn=expires_in,
        HttpMethod="PUT",
    )
    return PresignedPut(url=url, headers={"Content-Length": str(size)})
