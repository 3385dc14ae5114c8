"""Drift repair's work, as bounded messages on one queue, and the worker that does each.

- ``due``: the users of one shard whose check fell due (marked) since the shard's cursor.
  Queued hourly for every shard; a message stops taking users near its time limit and queues
  the rest. Only users touched by activity are ever listed, so idle users cost nothing.
- An S3 notification for an inventory ``manifest.json`` starts an audit run: one ``inventory``
  message per data file.
- ``inventory``: ``ROWS_PER_SLICE`` rows of one data file, counted per user into the run
  (idempotently, see ``ledger.audit_runs``), then the next slice is queued. Slices are fixed row
  ranges, so a message delivered twice does the same work twice, never different work. Users
  S3 holds objects of but the ledger has never seen are scheduled for the next hourly pass.
- ``users``: one ``UsersByShard`` shard's users, a page at a time, each compared with what the
  inventory counted. Users whose counters disagree with S3, or with themselves, are checked; users
  touched since the report began are left to the incremental pass.

No message holds more than a page of users or a slice of rows, so nothing grows with the store.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from quota_uploads.drift.check import Repaired, UserCheck
from quota_uploads.drift.inventory import (
    MalformedReport,
    manifest_key_of,
    parse_manifest,
    read_rows,
)
from quota_uploads.keys import owner_of
from quota_uploads.ledger import Ledger
from quota_uploads.ledger.audit import counters_agree
from quota_uploads.ledger.audit_runs import Counted, UserRecord
from quota_uploads.ledger.checks import WRITE_LAG_SECONDS
from quota_uploads.ledger.table import EXPIRY_SHARDS, number

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# A slice ends at whichever comes first, so its reads and writes (one count per user) are
# bounded however the rows spread over users; `make bench-reconcile` prints the time per slice.
ROWS_PER_SLICE = 50_000
USERS_PER_SLICE = 5_000
# Users read (and checked if need be) between two looks at the clock.
PAGE_SIZE = 100
# Requests in flight at once in one message: within botocore's pool of 10 connections.
THREADS = 8


class Work(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DueChecks(Work):
    kind: Literal["due"] = "due"
    shard: int
    until: int
    # The shard's cursor when this pass began; read from the table by the pass's first message.
    after: int | None = None
    start: dict[str, Any] | None = None


class InventorySlice(Work):
    kind: Literal["inventory"] = "inventory"
    run: str
    bucket: str
    key: str
    file: int
    row: int = 0
    created: int
    columns: tuple[str, ...]


class UserPages(Work):
    kind: Literal["users"] = "users"
    run: str
    shard: int
    created: int
    start: dict[str, Any] | None = None


_WORK: TypeAdapter[DueChecks | InventorySlice | UserPages] = TypeAdapter(
    Annotated[DueChecks | InventorySlice | UserPages, Field(discriminator="kind")]
)
Send = Callable[[Sequence[Work]], None]


class MalformedWork(ValueError):
    """A message that is neither a work item nor an S3 notification of a report."""


@dataclass
class Progress:
    checked: int = 0
    keys_repaired: int = 0
    bytes_corrected: int = 0
    failures: int = 0
    rows: int = 0
    # Users found only in S3, left to the next hourly pass.
    scheduled: int = 0


class Worker:
    def __init__(
        self,
        ledger: Ledger,
        s3: S3Client,
        check: UserCheck,
        send: Send,
        source_bucket: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._s3 = s3
        self._check = check
        self._send = send
        self._source_bucket = source_bucket
        self._clock = clock

    def queue_due_checks(self) -> int:
        """Queues this hour's pass over every shard; returns the number of messages."""
        until = int(self._clock()) - WRITE_LAG_SECONDS
        self._send([DueChecks(shard=shard, until=until) for shard in range(EXPIRY_SHARDS)])
        return EXPIRY_SHARDS

    def handle(self, body: str, should_stop: Callable[[], bool]) -> Progress:
        """Does one message's work; ``should_stop`` says when to hand the rest to a new one."""
        progress = Progress()
        try:
            document = json.loads(body)
        except ValueError:
            raise MalformedWork("not JSON") from None
        if isinstance(document, dict) and ("Records" in document or "Event" in document):
            for record in document.get("Records", []):
                location = manifest_key_of(record) if isinstance(record, dict) else None
                if location is not None:
                    self._start_run(*location)
            return progress
        try:
            work = _WORK.validate_python(document)
        except ValidationError as error:
            raise MalformedWork(str(error)) from None
        if isinstance(work, DueChecks):
            self._due(work, should_stop, progress)
        elif isinstance(work, InventorySlice):
            self._slice(work, progress)
        else:
            self._users(work, should_stop, progress)
        return progress

    def _due(self, work: DueChecks, should_stop: Callable[[], bool], progress: Progress) -> None:
        checks = self._ledger.checks
        after = checks.cursor(work.shard) if work.after is None else work.after
        start = work.start
        while True:
            page = checks.due(work.shard, after, work.until, start, PAGE_SIZE)
            self._check_users(page.subs, progress)
            start = page.next_start
            if start is None:
                checks.advance(work.shard, after, work.until)
                return
            if should_stop():
                self._send(
                    [DueChecks(shard=work.shard, until=work.until, after=after, start=start)]
                )
                return

    def _start_run(self, bucket: str, key: str) -> None:
        try:
            manifest = parse_manifest(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except MalformedReport:
            logger.exception("unreadable inventory manifest %s/%s", bucket, key)
            return
        if manifest.source_bucket != self._source_bucket:
            logger.warning("ignoring the inventory of another bucket: %s", manifest.source_bucket)
            return
        # <prefix>/<source bucket>/<configuration id>/<YYYY-MM-DDTHH-MMZ>/manifest.json
        run = "/".join(key.split("/")[-3:-1])
        runs = self._ledger.audit_runs
        runs.start(run, len(manifest.files))
        # Queued again if the notification comes twice: slices are idempotent, a lost one is not.
        self._send(
            [
                InventorySlice(
                    run=run,
                    bucket=manifest.destination_bucket,
                    key=data.key,
                    file=index,
                    created=manifest.created,
                    columns=manifest.schema,
                )
                for index, data in enumerate(manifest.files)
            ]
        )
        if not manifest.files:
            self._queue_users(run, manifest.created)

    def _slice(self, work: InventorySlice, progress: Progress) -> None:
        body = self._s3.get_object(Bucket=work.bucket, Key=work.key)["Body"]
        counted: dict[str, list[int]] = {}
        rows = 0
        full = False
        for row in read_rows(body, work.columns, skip=work.row):
            owner = owner_of(row.key)
            # Cut where the file's content says, never where the clock does: a slice delivered
            # twice must count the same rows under the same name.
            full = rows == ROWS_PER_SLICE or (
                owner is not None and owner.sub not in counted and len(counted) == USERS_PER_SLICE
            )
            if full:
                break
            rows += 1
            if owner is not None:
                seen = counted.setdefault(owner.sub, [0, 0])
                seen[0] += row.size
                seen[1] += 1
        progress.rows = rows
        runs = self._ledger.audit_runs
        slice_id = f"{work.file}:{work.row}"
        # Writes of one user never wait on another's: spread them over threads.
        self._in_parallel(
            lambda chunk: runs.count(
                work.run, slice_id, {sub: Counted(*counted[sub]) for sub in chunk}
            ),
            list(counted),
        )
        now = int(self._clock())
        known = runs.known(counted)
        unknown = [sub for sub in counted if sub not in known]
        # Checked by the next hourly pass: a slice of such users (a bucket filled before the
        # ledger existed) would not fit one message's time if checked here.
        self._in_parallel(lambda chunk: self._ledger.checks.schedule_unknown(chunk, now), unknown)
        progress.scheduled += len(unknown)
        if full:
            self._send([work.model_copy(update={"row": work.row + rows})])
        elif runs.file_done(work.run, work.file):
            self._queue_users(work.run, work.created)

    def _in_parallel(self, task: Callable[[list[str]], object], subs: list[str]) -> None:
        chunks = [subs[i::THREADS] for i in range(THREADS)]
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(task, chunks))

    def _queue_users(self, run: str, created: int) -> None:
        self._send(
            [UserPages(run=run, shard=shard, created=created) for shard in range(EXPIRY_SHARDS)]
        )
        self._ledger.audit_runs.users_queued(run)

    def _users(self, work: UserPages, should_stop: Callable[[], bool], progress: Progress) -> None:
        runs = self._ledger.audit_runs
        start = work.start
        while True:
            page = runs.users(work.shard, start, PAGE_SIZE)
            records = runs.records(work.run, page.subs)
            self._check_users([r.sub for r in records if self._suspect(r, work.created)], progress)
            start = page.next_start
            if start is None:
                return
            if should_stop():
                self._send([work.model_copy(update={"start": start})])
                return

    def _suspect(self, record: UserRecord, created: int) -> bool:
        usage = record.usage
        if number(usage, "touchedAt") >= created - self._ledger.checks.settle:
            # Changed around the report: the incremental pass checks it once it settles.
            return False
        return not counters_agree(usage, record.counted.bytes, record.counted.objects)

    def _check_users(self, subs: list[str], progress: Progress) -> None:
        """Checks users side by side: a check mostly waits on S3 and DynamoDB."""
        if not subs:
            return
        with ThreadPoolExecutor(min(THREADS, len(subs))) as pool:
            outcomes = list(pool.map(self._check_user, subs))
        for repaired in outcomes:
            if repaired is None:
                progress.failures += 1
            else:
                progress.checked += 1
                progress.keys_repaired += repaired.keys
                progress.bytes_corrected += repaired.bytes

    def _check_user(self, sub: str) -> Repaired | None:
        try:
            return self._check.check(sub, self._clock())
        except Exception:
            # One user's failure must not stop the others; the next audit checks them again.
            logger.exception("drift check failed for %s", sub)
            return None
