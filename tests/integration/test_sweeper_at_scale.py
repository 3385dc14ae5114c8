"""The sweeper against DynamoDB Local: one user's pile of abandoned uploads, or a broken item,
never keeps anyone else's reservations from ending on time."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from quota_uploads.config import Settings
from quota_uploads.ledger import Ledger, MultipartTarget
from quota_uploads.ledger.table import bucket_width
from tests.support.dynamodb import fast_local_client, ledger_table_on_dynamodb_local, local_client

pytestmark = pytest.mark.integration
TABLE = "ledger-sweeper"
SETTINGS = Settings(table_name=TABLE, bucket_name="unused", default_quota_bytes=10**12)
START = 1_800_000_000.0
ABANDONED = 10_000
SPAN = 100


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def endpoint(template: dict[str, Any]) -> Iterator[str]:
    with ledger_table_on_dynamodb_local(template, TABLE) as url:
        yield url


def test_a_pile_of_abandoned_uploads_and_a_broken_item_stop_no_one_else(endpoint: str) -> None:
    clock = Clock()
    ledger = Ledger(fast_local_client(endpoint), SETTINGS, clock=clock)
    width = bucket_width(SETTINGS.reservation_lifetime_seconds)
    # 10,000 uploads started over 100 bucket widths (a sync client left running), none sent.
    with ThreadPoolExecutor(8) as pool:
        for step in range(SPAN):
            clock.now = START + step * width
            ids = [ledger.new_upload_id(1) for _ in range(ABANDONED // SPAN)]
            list(pool.map(lambda upload: ledger.grant("hoarder", upload), ids))
    for sub in ("alice", "bob"):
        ledger.grant(sub, ledger.new_upload_id(500))
    aborted: list[str] = []

    def abort(key: str, s3_upload_id: str) -> None:
        if s3_upload_id == "broken":
            raise ConnectionError("S3 did not answer")
        aborted.append(key)

    for sub, s3_upload_id in (("carol", "mp-1"), ("dave", "broken")):
        upload = ledger.new_upload_id(700, multipart=True)
        ledger.grant(sub, upload, MultipartTarget(f"users/{sub}/{upload}/f", s3_upload_id, 5))
    ledger.grant("mallory", ledger.new_upload_id(300))
    client = local_client(endpoint)
    # A usage item someone edited by hand: one bucket holds a string.
    item = client.get_item(TableName=TABLE, Key=usage_key("mallory"))["Item"]
    (bucket,) = [name for name in item if name.startswith("r1")]
    client.update_item(
        TableName=TABLE,
        Key=usage_key("mallory"),
        UpdateExpression="SET #b = :text",
        ExpressionAttributeNames={"#b": bucket},
        ExpressionAttributeValues={":text": {"S": "three hundred"}},
    )

    multipart = SETTINGS.multipart_lifetime_seconds
    clock.now += multipart + bucket_width(multipart)
    swept = ledger.release_expired(abort)

    assert (swept.failures, swept.uploads_aborted) == (2, 1)
    assert swept.reservations == ABANDONED + 2 + 2
    assert [key.split("/")[1] for key in aborted] == ["carol"]
    for sub in ("hoarder", "alice", "bob", "carol", "dave"):
        assert ledger.usage(sub).reserved_bytes == 0, sub
    assert ledger.usage("mallory").reserved_bytes == 300
    assert ledger.release_expired(abort).failures == 2


def usage_key(sub: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{sub}"}, "sk": {"S": "USAGE"}}
