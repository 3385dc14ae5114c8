"""Real races against Amazon DynamoDB Local: the quota holds to the byte under concurrency.

Every thread has its own client and Ledger, and a barrier starts each round's requests
together. moto is not atomic under concurrency, so these run only against DynamoDB Local.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import pytest

from local_stack.atomic_moto import AtomicMotoServer
from quota_uploads.config import Settings
from quota_uploads.keys import upload_terms
from quota_uploads.ledger import Applied, InsufficientQuota, Ledger, UsageState
from quota_uploads.ledger.table import buckets
from quota_uploads.s3_events import parse_notification
from tests.support.dynamodb import (
    create_ledger_table,
    fast_local_client,
    ledger_table_on_dynamodb_local,
    local_client,
    running_moto,
)
from tests.support.s3_notifications import notification, record

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import BatchGetItemOutputTypeDef, GetItemOutputTypeDef

pytestmark = pytest.mark.integration
THREADS = 32
ROUNDS = 100
QUOTA = 10_000
SIZES = [1, 100, 333, 500, 1000, 2500]
TABLE = "ledger-races"
SETTINGS = Settings(table_name=TABLE, bucket_name="unused", default_quota_bytes=QUOTA)
LIFETIME = SETTINGS.reservation_lifetime_seconds


@pytest.fixture(scope="module")
def endpoint(template: dict[str, Any]) -> Iterator[str]:
    with ledger_table_on_dynamodb_local(template, TABLE) as url:
        yield url


def ledgers(endpoint: str, count: int, clock: Callable[[], float] | None = None) -> list[Ledger]:
    """Every other ledger uses the hand-written client the API uses in production."""
    extra = {"clock": clock} if clock else {}
    makers = [local_client, fast_local_client]
    return [Ledger(makers[n % 2](endpoint), SETTINGS, **extra) for n in range(count)]


def race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Runs every worker at once, released together by a barrier; returns results or errors."""
    barrier = threading.Barrier(len(workers))

    def run(work: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return work()
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(workers)) as pool:
        return list(pool.map(run, workers))


@dataclass
class Tally:
    rounds: int = 0
    grants: int = 0
    refusals: int = 0
    overshoots: int = 0


def grant(ledger: Ledger, sub: str, size: int) -> partial[UsageState]:
    """A grant of ``size`` bytes, its upload id minted now, to run later (in a race)."""
    return partial(ledger.grant, sub, ledger.new_upload_id(size))


def apply_notification(ledger: Ledger, body: str) -> Applied:
    """An S3 notification's events applied, parsed in the racing thread itself."""
    return ledger.apply_events(parse_notification(body))


@pytest.fixture(scope="module")
def local_stack_moto(template: dict[str, Any]) -> Iterator[str]:
    """The moto server ``make dev`` runs, with the ledger table."""
    with running_moto(AtomicMotoServer) as endpoint:
        create_ledger_table(endpoint, template, TABLE)
        yield endpoint


def test_racing_grants_never_pass_the_quota(endpoint: str) -> None:
    assert_racing_grants_hold_the_quota(endpoint, ROUNDS)


def test_racing_grants_on_the_local_stacks_moto_never_pass_the_quota(
    local_stack_moto: str,
) -> None:
    """Plain moto overshoots now and then; the local stack serialises its requests."""
    assert_racing_grants_hold_the_quota(local_stack_moto, ROUNDS // 2)


def assert_racing_grants_hold_the_quota(endpoint: str, rounds: int) -> None:
    pool = ledgers(endpoint, THREADS)
    rng = random.Random(20261124)
    tally = Tally()
    for round_ in range(rounds):
        sub = f"race-{round_}"
        sizes = [rng.choice(SIZES) for _ in range(THREADS)]
        results = race([grant(ledger, sub, size) for ledger, size in zip(pool, sizes, strict=True)])
        granted = [
            size
            for size, result in zip(sizes, results, strict=True)
            if not isinstance(result, Exception)
        ]
        refused = [r for r in results if isinstance(r, InsufficientQuota)]
        unexpected = [r for r in results if isinstance(r, Exception) and r not in refused]
        assert len(granted) + len(refused) == THREADS, unexpected
        for refusal in refused:
            assert refusal.requested_bytes > refusal.available_bytes
            assert refusal.used_bytes + refusal.reserved_bytes <= QUOTA
        usage = pool[0].usage(sub)
        tally.rounds += 1
        tally.grants += len(granted)
        tally.refusals += len(refused)
        tally.overshoots += int(sum(granted) > QUOTA)
        assert sum(granted) <= QUOTA
        assert usage.reserved_bytes == sum(granted)
    print(f"\ngrant races: {tally}, {THREADS} threads")
    assert tally.overshoots == 0
    assert tally.grants > 0
    assert tally.refusals > 0


def test_grants_racing_quota_changes_keep_the_books(endpoint: str) -> None:
    pool = ledgers(endpoint, THREADS)
    admin = ledgers(endpoint, 1)[0]
    sub = "race-quota-changes"
    granted: list[int] = []
    for round_ in range(20):
        quota = 2000 + 3000 * (round_ % 3)
        workers: list[Callable[[], Any]] = [grant(ledger, sub, 10) for ledger in pool[:-1]]
        workers.append(partial(admin.set_quota, sub, quota))
        results = race(workers)
        assert not [
            r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientQuota)
        ]
        granted += [10 for r in results[:-1] if not isinstance(r, Exception)]
        assert admin.usage(sub).reserved_bytes == sum(granted)

    final = sum(granted) + 55
    admin.set_quota(sub, final)
    before = admin.usage(sub).reserved_bytes
    results = race([grant(ledger, sub, 10) for ledger in pool])
    burst = [r for r in results if not isinstance(r, Exception)]
    assert len(burst) == (final - before) // 10
    assert admin.usage(sub).reserved_bytes <= final


def test_grants_racing_event_application_count_every_byte_once(endpoint: str) -> None:
    granters = ledgers(endpoint, THREADS // 2)
    appliers = ledgers(endpoint, THREADS // 2)
    sub = "race-events"
    rng = random.Random(7)
    arrived: dict[str, int] = {}
    outstanding: dict[str, tuple[str, int]] = {}
    for _ in range(30):
        sizes = [rng.choice(SIZES) for _ in granters]
        ready = list(outstanding.items())[: len(appliers)]
        bodies = []
        for upload, (key, declared) in ready:
            actual = rng.randint(0, declared)
            arrived[key] = actual
            del outstanding[upload]
            bodies.append(notification(record(key, size=actual, etag=upload)))
        grants = [grant(ledger, sub, size) for ledger, size in zip(granters, sizes, strict=True)]
        workers: list[Callable[[], Any]] = list(grants)
        # Each body goes out twice, from two threads: redelivery racing itself.
        for index, body in enumerate(bodies + bodies):
            ledger = appliers[index % len(appliers)]
            workers.append(partial(apply_notification, ledger, body))
        results = race(workers)
        for work, size, result in zip(grants, sizes, results, strict=False):
            if not isinstance(result, Exception):
                upload = work.args[1]
                outstanding[upload] = (f"users/{sub}/{upload}/f.bin", size)
        assert all(not r.failed for r in results[len(granters) :])

    usage = granters[0].usage(sub)
    assert usage.used_bytes == sum(arrived.values())
    assert usage.object_count == len(arrived)
    assert usage.reserved_bytes == sum(size for _, size in outstanding.values())
    assert usage.used_bytes + usage.reserved_bytes <= QUOTA


def test_the_sweeper_racing_an_arrival_releases_the_reservation_once(endpoint: str) -> None:
    later = 4_000_000_000.0
    sweeper, applier = ledgers(endpoint, 2, clock=lambda: later)
    granter = ledgers(endpoint, 1)[0]
    for round_ in range(30):
        sub = f"race-sweep-{round_}"
        upload = granter.new_upload_id(700)
        granter.grant(sub, upload)
        body = notification(record(f"users/{sub}/{upload}/f.bin", size=650))
        arrival = partial(applier.apply_events, parse_notification(body))
        sweep = partial(sweeper.release_expired, abort=lambda key, s3_upload_id: None)
        results = race([sweep, arrival])
        assert not any(isinstance(r, Exception) for r in results), results
        usage = granter.usage(sub)
        assert (usage.used_bytes, usage.reserved_bytes) == (650, 0)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class GrantsBetweenReadAndWrite:
    """A client holding its reads of one user's usage item back until a grant made after them
    has landed: the interleaving a sweep or an arrival must survive, made certain instead of
    left to chance."""

    def __init__(self, client: DynamoDBClient, sub: str) -> None:
        self._client = client
        self._sub = sub
        self._pk = f"USER#{sub}"
        self.read = threading.Event()
        self.granted = threading.Event()

    def grant_after_the_read(self, granter: Ledger, size: int) -> threading.Thread:
        """Starts a grant that waits for this client's read and then lets it go on."""

        def grant() -> None:
            self.read.wait(timeout=30)
            granter.grant(self._sub, granter.new_upload_id(size))
            self.granted.set()

        late = threading.Thread(target=grant)
        late.start()
        return late

    def get_item(self, **params: Any) -> GetItemOutputTypeDef:
        item = self._client.get_item(**params)
        self._hold_if_ours([params["Key"]])
        return item

    def batch_get_item(self, **params: Any) -> BatchGetItemOutputTypeDef:
        items = self._client.batch_get_item(**params)
        self._hold_if_ours(key for read in params["RequestItems"].values() for key in read["Keys"])
        return items

    def _hold_if_ours(self, keys: Iterable[dict[str, Any]]) -> None:
        if any(key["pk"]["S"] == self._pk and key["sk"]["S"] == "USAGE" for key in keys):
            self.read.set()
            self.granted.wait(timeout=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def as_client(self) -> DynamoDBClient:
        """This wrapper, typed as the client it stands in for (reads held, the rest passed on)."""
        return cast("DynamoDBClient", self)


def test_a_grant_between_the_sweepers_read_and_write_keeps_its_reservation(
    endpoint: str,
) -> None:
    """A sweep that read the item before a grant must not move the index entry past the
    grant's bucket, or that bucket would never be swept."""
    clock = Clock(4_100_000_000.0)
    granter = ledgers(endpoint, 1, clock=clock)[0]
    sub = "race-sweeper-grants"
    client = GrantsBetweenReadAndWrite(local_client(endpoint), sub)
    sweeper = Ledger(client.as_client(), SETTINGS, clock=clock)
    granter.grant(sub, granter.new_upload_id(10))
    clock.now += LIFETIME + 3600

    late = client.grant_after_the_read(granter, 7)
    first = sweeper.release_expired(abort=lambda key, s3_upload_id: None)
    late.join()
    assert first.failures == 0
    assert granter.usage(sub).reserved_bytes == 7
    clock.now += 2 * LIFETIME
    sweeper.release_expired(abort=lambda key, s3_upload_id: None)
    assert granter.usage(sub).reserved_bytes == 0


def test_a_grant_between_an_arrivals_read_and_write_keeps_its_reservation(endpoint: str) -> None:
    """An arrival that empties the earliest bucket points the sweeper at the next one it read;
    a grant since then may have opened an earlier one it must not skip."""
    clock = Clock(4_200_000_000.0)
    granter = ledgers(endpoint, 1, clock=clock)[0]
    sub = "race-arrival-grants"
    client = GrantsBetweenReadAndWrite(local_client(endpoint), sub)
    applier = Ledger(client.as_client(), SETTINGS, clock=clock)
    sweeper = ledgers(endpoint, 1, clock=clock)[0]
    upload = granter.new_upload_id(10)
    granter.grant(sub, upload)
    clock.now += LIFETIME

    late = client.grant_after_the_read(granter, 7)
    body = notification(record(f"users/{sub}/{upload}/f.bin", size=10))
    assert applier.apply_events(parse_notification(body)).failed == set()
    late.join()
    usage = granter.usage(sub)
    assert (usage.used_bytes, usage.reserved_bytes) == (10, 7)
    clock.now += 2 * LIFETIME
    sweeper.release_expired(abort=lambda key, s3_upload_id: None)
    assert granter.usage(sub).reserved_bytes == 0


def test_cancels_racing_arrivals_end_each_reservation_exactly_once(endpoint: str) -> None:
    cancellers = ledgers(endpoint, THREADS // 2)
    appliers = ledgers(endpoint, THREADS // 2)
    rng = random.Random(11)
    for round_number in range(20):
        # A user of their own per round: at most 16 cancels wait for their bucket to end.
        sub = f"race-cancels-{round_number}"
        cancellers[0].set_quota(sub, 10**12)
        uploads = [cancellers[0].new_upload_id(rng.choice(SIZES)) for _ in cancellers]
        for upload in uploads:
            cancellers[0].grant(sub, upload)
        workers: list[Callable[[], Any]] = []
        charged = 0
        for index, upload in enumerate(uploads):
            terms = upload_terms(upload)
            assert terms is not None
            # Every upload is cancelled; about half of them arrive all the same, at the same time.
            workers.append(partial(cancellers[index].cancel, sub, upload))
            if rng.random() < 0.5:
                body = notification(record(f"users/{sub}/{upload}/f.bin", size=terms.size))
                workers.append(partial(apply_notification, appliers[index], body))
                charged += terms.size
        results = race(workers)
        assert not [r for r in results if isinstance(r, Exception)]
        assert all(not r.failed for r in results if isinstance(r, Applied))
        usage = cancellers[0].usage(sub)
        # Whichever came first, each reservation ended once: none left, none ended twice.
        assert (usage.used_bytes, usage.reserved_bytes) == (charged, 0)
        item = cancellers[0].usage_item(sub)
        assert sum(bucket.count for bucket in buckets(item).values()) == 0
        assert int(item["openReservations"]["N"]) == 0
