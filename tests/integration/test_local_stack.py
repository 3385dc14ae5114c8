"""The local stack over real HTTP: tokens, presigned PUTs, S3 events, 507, deletes, expiry."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import requests

from tests.support.local_stack_process import RunningProcess, eventually, local_stack_process
from tests.support.tokens import local_token, user_named

pytestmark = pytest.mark.integration
QUOTA = 10_000


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningProcess]:
    with local_stack_process(
        "--parameter",
        f"DefaultQuotaBytes={QUOTA}",
        "--parameter",
        "UploadUrlExpirySeconds=3",
        "--parameter",
        "ReservationGraceSeconds=0",
        "--sweep-interval",
        "0.5",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: RunningProcess) -> str:
    return stack.url


class Client:
    def __init__(self, api: str, user: str, groups: list[str] | None = None) -> None:
        self.api = api
        identity = local_token(api, user, groups or [])
        self.sub = identity.sub
        self.session = requests.Session()
        self.session.headers.update(identity.headers)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.api}{path}", timeout=10, **kwargs)

    def usage(self) -> dict[str, Any]:
        answer = self.request("GET", "/usage")
        assert answer.status_code == 200, answer.text
        usage: dict[str, Any] = answer.json()
        return usage

    def grant(self, size: int, name: str = "f.bin", **fields: Any) -> requests.Response:
        body = {"filename": name, "size": size, "contentType": "application/octet-stream"}
        return self.request("POST", "/uploads", json={**body, **fields})

    def upload(self, data: bytes, name: str = "f.bin") -> dict[str, Any]:
        answer = self.grant(len(data), name)
        assert answer.status_code == 201, answer.text
        grant: dict[str, Any] = answer.json()
        stored = requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10)
        assert stored.status_code == 200, stored.text
        return grant


@pytest.fixture
def alice(api: str, request: pytest.FixtureRequest) -> Client:
    # A user per test keeps tests independent on the shared stack.
    return Client(api, user_named(f"alice-{request.node.name[:40]}"))


def test_requests_without_a_valid_token_are_401(api: str) -> None:
    assert requests.get(f"{api}/usage", timeout=5).status_code == 401
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    assert requests.get(f"{api}/usage", headers=forged, timeout=5).status_code == 401


def test_an_upload_becomes_usage_after_the_put(alice: Client) -> None:
    grant = alice.upload(b"x" * 1234)
    assert grant["usage"]["reservedBytes"] == 1234
    usage = eventually(alice.usage, lambda u: u["usedBytes"] == 1234)
    assert (usage["reservedBytes"], usage["objectCount"]) == (0, 1)
    files = alice.request("GET", "/files").json()["files"]
    assert [(f["key"], f["size"]) for f in files] == [(grant["key"], 1234)]


def test_a_checksummed_upload_lands(alice: Client) -> None:
    data = b"checked bytes"
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    answer = alice.grant(len(data), checksumSha256=digest)
    assert answer.status_code == 201
    grant = answer.json()
    assert grant["headers"]["x-amz-checksum-sha256"] == digest
    assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10).ok
    eventually(alice.usage, lambda u: u["usedBytes"] == len(data))


def test_filling_the_quota_gives_507_and_deleting_gives_space_back(alice: Client) -> None:
    first = alice.upload(b"a" * 6000, "a.bin")
    alice.upload(b"b" * 3000, "b.bin")
    eventually(alice.usage, lambda u: u["usedBytes"] == 9000)
    refused = alice.grant(1001)
    assert refused.status_code == 507
    body = refused.json()
    assert body["error"] == "Insufficient Storage"
    assert (body["usedBytes"], body["reservedBytes"], body["quotaBytes"]) == (9000, 0, QUOTA)
    assert (body["requestedBytes"], body["availableBytes"]) == (1001, 1000)
    assert "Delete files" in body["message"]

    deleted = alice.request("DELETE", f"/files/{quote(first['key'], safe='')}")
    assert deleted.status_code == 204
    eventually(alice.usage, lambda u: u["usedBytes"] == 3000)
    assert alice.grant(1001).status_code == 201


def test_another_users_file_cannot_be_deleted(api: str, alice: Client) -> None:
    grant = alice.upload(b"mine")
    mallory = Client(api, "mallory")
    answer = mallory.request("DELETE", f"/files/{quote(grant['key'], safe='')}")
    assert answer.status_code == 404
    assert alice.request("GET", "/files").json()["files"][0]["key"] == grant["key"]


def test_an_unused_reservation_is_released_after_expiry(alice: Client) -> None:
    assert alice.grant(5000).status_code == 201
    assert alice.usage()["reservedBytes"] == 5000
    usage = eventually(alice.usage, lambda u: u["reservedBytes"] == 0, timeout=15)
    assert usage["usedBytes"] == 0


def test_admins_change_quotas_through_the_api(api: str, alice: Client) -> None:
    admin = Client(api, "root", ["admins"])
    user = Client(api, "quota-target")
    quota = f"/admin/users/{user.sub}/quota"
    assert admin.request("PUT", quota, json={"quotaBytes": 50}).status_code == 200
    assert user.usage()["quotaBytes"] == 50
    assert user.grant(51).status_code == 507
    assert alice.request("PUT", quota, json={"quotaBytes": 1}).status_code == 403


def test_the_web_page_is_served(api: str) -> None:
    page = requests.get(f"{api}/", timeout=5)
    assert page.status_code == 200
    assert "quota-uploads" in page.text
    assert (
        requests.get(f"{api}/app.js", timeout=5)
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    assert requests.get(f"{api}/../pyproject.toml", timeout=5).status_code == 404


def test_crossing_the_alert_threshold_is_announced_on_the_topic(
    api: str, stack: RunningProcess
) -> None:
    user = Client(api, "nearly-full")
    user.upload(b"z" * 8500)
    eventually(user.usage, lambda u: u["usedBytes"] == 8500)
    alerts = eventually(
        lambda: [line for line in stack.output if "ALERT (SNS)" in line and user.sub in line],
        bool,
    )
    assert '"type": "quota.threshold"' in alerts[0]
    assert '"percentUsed": 85.0' in alerts[0]


def test_poison_messages_end_in_the_dead_letter_queue(stack: RunningProcess) -> None:
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queue = sqs.get_queue_url(QueueName="quota-uploads-local-usageeventsqueue")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="quota-uploads-local-usageeventsdlq")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="this is not an S3 event")

    def dead_letters() -> list[str]:
        messages = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0).get("Messages", [])
        return [m["Body"] for m in messages]

    assert eventually(dead_letters, bool, timeout=30) == ["this is not an S3 event"]
    malformed = [line for line in stack.output if "malformed message" in line]
    assert len(malformed) >= 5
