"""The quota ledger: where the quota is decided and where usage is kept, in one DynamoDB table.

One module per concern, behind this facade: ``grants`` (where the quota is decided),
``events`` (S3 events applied exactly once), ``sweeping`` (reservations that ran out),
``alert_levels``, ``audit`` (what drift repair reads and corrects), ``checks`` (who needs a drift
check, kept by activity), ``audit_runs`` (the daily audit's counts), ``totals`` (store-wide
sums from the table's stream), ``table`` (the item layout) and ``model`` (the domain types the
ledger answers with).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from quota_uploads.accounting import ObjectState, UserChanges
from quota_uploads.config import Settings
from quota_uploads.ledger.alert_levels import AlertLevels
from quota_uploads.ledger.audit import Audit
from quota_uploads.ledger.audit_runs import AuditRuns
from quota_uploads.ledger.checks import Checks
from quota_uploads.ledger.events import EventApplier
from quota_uploads.ledger.grants import Grants
from quota_uploads.ledger.model import (
    Applied,
    InsufficientQuota,
    LedgerRefusal,
    MultipartTarget,
    Reservation,
    Swept,
    TooManyCancelled,
    TooManyUploads,
    UsageState,
)
from quota_uploads.ledger.sweeping import AbortUpload, Sweeper
from quota_uploads.ledger.table import Item, Table
from quota_uploads.ledger.totals import Totals
from quota_uploads.s3_events import ObjectEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "Applied",
    "InsufficientQuota",
    "Ledger",
    "LedgerRefusal",
    "MultipartTarget",
    "Reservation",
    "Swept",
    "TooManyCancelled",
    "TooManyUploads",
    "UsageState",
]


class Ledger:
    def __init__(
        self,
        client: DynamoDBClient,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = Table(client, settings, clock)
        self._grants = Grants(self._table)
        self._events = EventApplier(self._table, AlertLevels(self._table))
        self._sweeper = Sweeper(self._table)
        self._audit = Audit(self._table)
        self.checks = Checks(self._table)
        self.audit_runs = AuditRuns(self._table)
        self.totals = Totals(self._table)

    def usage(self, sub: str) -> UsageState:
        return self._table.usage_state(self._table.usage_item(sub))

    def new_upload_id(self, size: int, multipart: bool = False) -> str:
        return self._grants.new_upload_id(size, multipart)

    def grant(
        self, sub: str, upload_id: str, multipart: MultipartTarget | None = None
    ) -> UsageState:
        return self._grants.grant(sub, upload_id, multipart)

    def set_quota(self, sub: str, quota_bytes: int | None) -> None:
        self._grants.set_quota(sub, quota_bytes)

    def reservation(self, sub: str, upload_id: str) -> Reservation | None:
        return self._grants.reservation(sub, upload_id)

    def cancel(self, sub: str, upload_id: str) -> bool:
        return self._grants.cancel(sub, upload_id)

    def release(self, reservation: Reservation) -> bool:
        return self._grants.release(reservation)

    def apply_events(self, events: Iterable[ObjectEvent]) -> Applied:
        return self._events.apply_events(events)

    def write(self, changes: UserChanges) -> None:
        self._events.write(changes)

    def release_expired(
        self, abort: AbortUpload, should_stop: Callable[[], bool] = lambda: False
    ) -> Swept:
        return self._sweeper.release_expired(abort, should_stop)

    def usage_item(self, sub: str) -> Item:
        return self._table.usage_item(sub)

    def registers(self, sub: str) -> dict[str, ObjectState]:
        return self._audit.registers(sub)

    def touch(self, sub: str) -> None:
        self.checks.touch(sub)

    def correct_counters(self, sub: str, seen: Item, used: int, object_count: int) -> int:
        return self._audit.correct_counters(sub, seen, used, object_count)
