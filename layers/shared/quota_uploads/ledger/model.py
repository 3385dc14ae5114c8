"""What the ledger answers and refuses with: domain types, with no HTTP and no DynamoDB in them.

The API builds its bodies and statuses from these (``uploads``), so the ledger needs neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quota_uploads.alerts import Crossing


@dataclass(frozen=True)
class UsageState:
    used_bytes: int
    reserved_bytes: int
    quota_bytes: int
    object_count: int

    @property
    def available_bytes(self) -> int:
        return max(0, self.quota_bytes - self.used_bytes - self.reserved_bytes)

    @property
    def percent_used(self) -> float:
        if not self.quota_bytes:
            return 100.0 if self.used_bytes else 0.0
        return round(100 * self.used_bytes / self.quota_bytes, 2)


class LedgerRefusal(Exception):
    """A grant the ledger declines; the caller decides how to tell the client."""


class InsufficientQuota(LedgerRefusal):
    def __init__(self, usage: UsageState, requested_bytes: int) -> None:
        super().__init__(f"{requested_bytes} bytes do not fit in {usage}")
        self.usage = usage
        self.requested_bytes = requested_bytes
        self.used_bytes = usage.used_bytes
        self.reserved_bytes = usage.reserved_bytes
        self.quota_bytes = usage.quota_bytes
        self.available_bytes = usage.available_bytes


class TooManyUploads(LedgerRefusal):
    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} uploads are already open")
        self.limit = limit


class TooManyCancelled(LedgerRefusal):
    """More single PUTs cancelled lately than the usage item keeps marks for."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} cancelled uploads are still within their reservation")
        self.limit = limit


@dataclass(frozen=True)
class MultipartTarget:
    key: str
    s3_upload_id: str
    part_bytes: int


@dataclass(frozen=True)
class Reservation:
    """An open multipart upload: its reserved bytes and where its parts go."""

    sub: str
    upload_id: str
    bytes: int
    expires_at: int
    multipart: MultipartTarget


@dataclass
class Applied:
    """What applying a batch of events did: users whose writes failed, levels crossed."""

    failed: set[str] = field(default_factory=set)
    crossings: list[Crossing] = field(default_factory=list)


@dataclass
class Swept:
    """What one sweep released, and how many users or records it could not handle."""

    reservations: int = 0
    bytes: int = 0
    uploads_aborted: int = 0
    failures: int = 0
