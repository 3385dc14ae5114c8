"""Presigned S3 URLs: PUTs that bind the exact size, type and (optionally) checksum of an
upload, and GETs that download an object under its original filename."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from quota_uploads.sigv4 import S3Presigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class PresignedPut:
    url: str
    headers: dict[str, str]


def attachment(filename: str) -> str:
    """A Content-Disposition saving the download as ``filename`` (RFC 6266, RFC 5987).

    Browsers that read ``filename*`` get the name exactly; the plain ``filename`` is an ASCII
    stand-in for the others, with anything it could not carry safely replaced."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in filename)
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


class UploadSigner:
    """Signs upload URLs: by hand where ``sigv4`` reproduces botocore, else with botocore."""

    def __init__(
        self, bucket: str, s3: Callable[[], S3Client], presigner: S3Presigner | None
    ) -> None:
        self._bucket = bucket
        self._s3 = s3
        self._presigner = presigner

    def put(
        self,
        *,
        key: str,
        size: int,
        content_type: str,
        checksum_sha256: str | None,
        expires_in: int,
    ) -> PresignedPut:
        """A SigV4 URL whose signature covers Content-Length and Content-Type.

        S3 rejects a body of any other length, so the declared size the quota reserved is the
        most that can land. ``If-None-Match: *`` makes S3 refuse to overwrite, so the URL can
        only create.
        """
        headers = {"Content-Type": content_type, "Content-Length": str(size), "If-None-Match": "*"}
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ContentLength": size,
            "ContentType": content_type,
            "IfNoneMatch": "*",
        }
        if checksum_sha256 is not None:
            headers["x-amz-checksum-sha256"] = checksum_sha256
            params["ChecksumSHA256"] = checksum_sha256
        if self._presigner is not None:
            url = self._presigner.presign_put(key, headers=headers, expires_in=expires_in)
        else:
            url = self._s3().generate_presigned_url(
                "put_object", Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
            )
        return PresignedPut(url=url, headers=headers)

    def get(self, *, key: str, filename: str, expires_in: int) -> str:
        """A GET URL that downloads the object as an attachment named ``filename``.

        Off the upload path, so botocore signs it: no hand-written signing to keep equal."""
        return self._s3().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ResponseContentDisposition": attachment(filename),
            },
            ExpiresIn=expires_in,
        )

    def part(
        self, *, key: str, s3_upload_id: str, part_number: int, size: int, expires_in: int
    ) -> PresignedPut:
        """A SigV4 URL for one part, binding its exact length so no part can carry more."""
        headers = {"Content-Length": str(size)}
        if self._presigner is not None:
            query = [("uploadId", s3_upload_id), ("partNumber", str(part_number))]
            url = self._presigner.presign_put(
                key, headers=headers, query=query, expires_in=expires_in
            )
        else:
            url = self._s3().generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "UploadId": s3_upload_id,
                    "PartNumber": part_number,
                    "ContentLength": size,
                },
                ExpiresIn=expires_in,
                HttpMethod="PUT",
            )
        return PresignedPut(url=url, headers=headers)
