"""Request and response bodies of the HTTP API, in the camelCase the API speaks."""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from pydantic.alias_generators import to_camel

from quota_uploads.keys import has_control_characters

if TYPE_CHECKING:
    from quota_uploads.ledger.model import UsageState

# type/subtype with RFC 6838 token characters, optionally followed by parameters. Everything
# is printable ASCII (a quoted value too: no DEL, no escapes), since the value is handed back
# as a header the client must send exactly, and only a space or tab may separate parts.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"([ \t]*;[ \t]*[A-Za-z0-9!#$&^_.+-]+="
    r"(\"[\x20\x21\x23-\x5b\x5d-\x7e]*\"|[A-Za-z0-9!#$&^_.+-]+))*",
    re.ASCII,
)
# The largest integer a JavaScript client reads exactly (2**53 - 1), about 8 PiB.
MAX_QUOTA_BYTES = 2**53 - 1

NonNegativeBytes = Annotated[StrictInt, Field(ge=0)]


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        # Schemas are built on first use, so a cold start pays only for the route it serves.
        defer_build=True,
    )


class UploadRequest(ApiModel):
    filename: str = Field(min_length=1, max_length=255)
    size: NonNegativeBytes = Field(description="Exact size of the file in bytes.")
    content_type: str = Field(max_length=255, description="Media type, e.g. image/jpeg.")
    checksum_sha256: str | None = Field(
        default=None, description="Base64 SHA-256 of the file; S3 then verifies the bytes."
    )
    multipart: bool | None = Field(
        default=None,
        description="Ask for (true) or against (false) a multipart upload; else the size decides.",
    )
    part_size: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None,
        description="Part size for a multipart upload, when the client chunks the file itself.",
    )

    @field_validator("filename")
    @classmethod
    def _printable_filename(cls, value: str) -> str:
        if has_control_characters(value):
            raise ValueError("filename must not contain control characters")
        if not value.strip():
            raise ValueError("filename must not be blank")
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if not _MEDIA_TYPE.fullmatch(value):
            raise ValueError("contentType must be a media type such as image/jpeg")
        return value

    @field_validator("checksum_sha256")
    @classmethod
    def _sha256_digest(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("checksumSha256 must be base64") from None
        if len(digest) != 32:
            raise ValueError("checksumSha256 must encode a 32-byte SHA-256 digest")
        return value


class Usage(ApiModel):
    used_bytes: int
    reserved_bytes: int
    quota_bytes: int
    available_bytes: int
    object_count: int
    percent_used: float

    @classmethod
    def of(cls, state: UsageState) -> Usage:
        return cls(
            used_bytes=state.used_bytes,
            reserved_bytes=state.reserved_bytes,
            quota_bytes=state.quota_bytes,
            available_bytes=state.available_bytes,
            object_count=state.object_count,
            percent_used=state.percent_used,
        )


class UploadGrant(ApiModel):
    upload_id: str
    key: str
    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(
        description="Headers the PUT must carry exactly; browsers set Content-Length themselves."
    )
    expires_at: str = Field(description="When the URL stops working, ISO 8601 UTC.")
    usage: Usage


class MultipartGrant(ApiModel):
    """A large upload: sign parts with the parts route, then complete (or abort) it."""

    upload_id: str
    key: str
    method: Literal["MULTIPART"] = "MULTIPART"
    part_size: int = Field(description="Every part but the last has exactly this size.")
    part_count: int
    expires_at: str = Field(description="When the reservation ends unless completed, ISO 8601.")
    usage: Usage


PartNumber = Annotated[StrictInt, Field(ge=1, le=10_000)]


class PartsRequest(ApiModel):
    part_numbers: list[PartNumber] = Field(min_length=1, max_length=1000)


class SignedPart(ApiModel):
    part_number: int
    url: str
    headers: dict[str, str]


class SignedParts(ApiModel):
    parts: list[SignedPart]


class UploadedPart(ApiModel):
    part_number: int
    size: int
    etag: str


class UploadedParts(ApiModel):
    parts: list[UploadedPart]


class CompletedPart(ApiModel):
    part_number: PartNumber
    etag: str = Field(min_length=1, max_length=1024)


class CompleteRequest(ApiModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


class CompletedUpload(ApiModel):
    key: str
    size: int
    etag: str


class FileItem(ApiModel):
    key: str
    filename: str
    size: int
    uploaded_at: str
    etag: str


class FileList(ApiModel):
    files: list[FileItem]
    next_token: str | None = None


class FileDownload(ApiModel):
    key: str
    filename: str
    size: int
    url: str = Field(description="GET it before expiresAt; it saves as filename")
    expires_at: str


class QuotaUpdate(ApiModel):
    quota_bytes: Annotated[StrictInt, Field(ge=0, le=MAX_QUOTA_BYTES)] | None = Field(
        description=(
            "New quota in bytes (at most 2**53 - 1, what JavaScript reads exactly), or null "
            "to fall back to the default quota."
        )
    )


class UserQuota(ApiModel):
    user_id: str
    quota_bytes: int
    is_default: bool


class ErrorBody(ApiModel):
    error: str
    message: str


class ServerErrorBody(ErrorBody):
    request_id: str


class GatewayErrorBody(ApiModel):
    """API Gateway's own refusals (its authorizer's 401) carry only a message."""

    message: str
    error: str | None = None


class InsufficientStorageBody(ErrorBody):
    used_bytes: int
    reserved_bytes: int
    quota_bytes: int
    requested_bytes: int
    available_bytes: int
