"""`python -m local_stack` refuses presigned uploads S3 would refuse, and charges nothing for them.

Grants come from the API over real HTTP; the bytes go to the stack's S3 the way a browser sends
them. Every altered request gets S3's answer, nothing lands (no object, no usage), and the
exact request still lands afterwards, which ``If-None-Match: *`` would refuse had anything
landed before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from quota_uploads.sigv4 import Credentials, S3Presigner
from tests.support.local_stack_process import RunningProcess, eventually, local_stack_process
from tests.support.tokens import local_token, user_named

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
QUOTA = 20 * MIB
NAME = "my file ✓ a+b=c.bin"


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningProcess]:
    with local_stack_process("--parameter", f"DefaultQuotaBytes={QUOTA}") as running:
        yield running


class User:
    def __init__(self, api: str, user: str) -> None:
        self.api = api
        self.session = requests.Session()
        self.session.headers.update(local_token(api, user).headers)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, f"{self.api}{path}", timeout=10, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = self.call("GET", "/usage")
        return usage


@pytest.fixture
def user(stack: RunningProcess, request: pytest.FixtureRequest) -> User:
    return User(stack.url, user_named(request.node.name))


def s3(stack: RunningProcess) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def bucket_of(url: str) -> str:
    return urlsplit(url).path.split("/")[1]


def stored(stack: RunningProcess, bucket: str, key: str) -> bool:
    try:
        s3(stack).head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        return error.response["Error"]["Code"] != "404"
    return True


def put(url: str, headers: dict[str, str], body: bytes, **extra: str) -> requests.Response:
    """As a browser PUTs: Content-Length is the body's, whatever the grant says."""
    sent = {name: value for name, value in headers.items() if name != "Content-Length"}
    return requests.put(url, data=body, headers={**sent, **extra}, timeout=30)


def code_of(answer: requests.Response) -> tuple[int, str]:
    assert answer.headers["Content-Type"] == "application/xml", answer.text
    return answer.status_code, ElementTree.fromstring(answer.content).findtext("Code", "")


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def tampered(url: str) -> str:
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    return with_query(url, **{"X-Amz-Signature": signature[::-1]})


def expired(stack: RunningProcess, grant: dict[str, Any]) -> str:
    """The grant's own request, signed by the stack's credentials fifteen minutes too early."""
    signer = S3Presigner(
        bucket=bucket_of(grant["url"]),
        region="us-east-1",
        endpoint_url=stack.aws_endpoint,
        credentials=lambda: Credentials("local", "local"),
    )
    signed_at = datetime.now(UTC) - timedelta(seconds=901)
    return signer.presign_put(grant["key"], headers=grant["headers"], expires_in=900, now=signed_at)


Send = Callable[[RunningProcess, dict[str, Any], bytes], requests.Response]
VARIANTS: dict[str, tuple[Send, int, str]] = {
    "body +1 byte": (
        lambda _, g, b: put(g["url"], g["headers"], b + b"!"),
        403,
        "SignatureDoesNotMatch",
    ),
    "body -1 byte": (
        lambda _, g, b: put(g["url"], g["headers"], b[:-1]),
        403,
        "SignatureDoesNotMatch",
    ),
    "another Content-Type": (
        lambda _, g, b: put(g["url"], g["headers"], b, **{"Content-Type": "text/html"}),
        403,
        "SignatureDoesNotMatch",
    ),
    "tampered signature": (
        lambda _, g, b: put(tampered(g["url"]), g["headers"], b),
        403,
        "SignatureDoesNotMatch",
    ),
    "expired": (lambda s, g, b: put(expired(s, g), g["headers"], b), 403, "AccessDenied"),
    "unsigned x-amz-acl": (
        lambda _, g, b: put(g["url"], g["headers"], b, **{"x-amz-acl": "public-read"}),
        403,
        "AccessDenied",
    ),
}


def test_each_altered_upload_is_refused_and_charges_nothing(
    stack: RunningProcess, user: User
) -> None:
    body = b"q" * 1000
    grant = user.call(
        "POST",
        "/uploads",
        json={"filename": NAME, "size": len(body), "contentType": "application/octet-stream"},
    )
    bucket = bucket_of(grant["url"])
    assert unquote(urlsplit(grant["url"]).path) == f"/{bucket}/{grant['key']}"
    for variant, (send, status, code) in VARIANTS.items():
        assert code_of(send(stack, grant, body)) == (status, code), variant
        assert not stored(stack, bucket, grant["key"]), variant
    assert user.usage()["usedBytes"] == 0

    assert put(grant["url"], grant["headers"], body).status_code == 200
    usage = eventually(user.usage, lambda u: u["usedBytes"] == len(body))
    assert (usage["reservedBytes"], usage["objectCount"]) == (0, 1)
    # Once it exists, the same URL may not overwrite it.
    assert code_of(put(grant["url"], grant["headers"], body)) == (412, "PreconditionFailed")

    # The functions' own S3 calls (botocore, Authorization header) are untouched.
    listed = user.call("GET", "/files")["files"]
    assert [(f["key"], f["size"]) for f in listed] == [(grant["key"], len(body))]
    user.call("DELETE", f"/files/{quote(grant['key'], safe='')}")
    assert not stored(stack, bucket, grant["key"])
    eventually(user.usage, lambda u: (u["usedBytes"], u["objectCount"]) == (0, 0))


def test_a_part_of_another_length_is_refused(stack: RunningProcess, user: User) -> None:
    size = 5 * MIB + 10
    grant = user.call(
        "POST",
        "/uploads",
        json={
            "filename": NAME,
            "size": size,
            "contentType": "application/octet-stream",
            "multipart": True,
            "partSize": 5 * MIB,
        },
    )
    upload = grant["uploadId"]
    parts = user.call("POST", f"/uploads/{upload}/parts", json={"partNumbers": [1, 2]})["parts"]
    lengths = {1: 5 * MIB, 2: 10}
    etags = []
    for part in parts:
        length = lengths[part["partNumber"]]
        for change in (+1, -1):
            answer = put(part["url"], part["headers"], b"p" * (length + change))
            assert code_of(answer) == (403, "SignatureDoesNotMatch")
        assert user.call("GET", f"/uploads/{upload}/parts")["parts"] == []
    for part in parts:
        answer = put(part["url"], part["headers"], b"p" * lengths[part["partNumber"]])
        assert answer.status_code == 200, answer.text
        etags.append({"partNumber": part["partNumber"], "etag": answer.headers["ETag"].strip('"')})
    held = user.call("GET", f"/uploads/{upload}/parts")["parts"]
    assert [(p["partNumber"], p["size"]) for p in held] == [(1, 5 * MIB), (2, 10)]
    user.call("POST", f"/uploads/{upload}/complete", json={"parts": etags})
    eventually(user.usage, lambda u: u["usedBytes"] == size)
