"""The local S3 (moto behind ``AtomicMotoServer``) checks presigned requests as S3 does.

Real HTTP against the embedded server, with URLs from our own signer and from botocore's: the
exact request is stored, and every altered one gets S3's status and error code and stores
nothing. moto alone accepts all of them (see /work/shared/facts.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from botocore.config import Config

from local_stack.atomic_moto import AtomicMotoServer
from quota_uploads.presign import PresignedPut, UploadSigner
from quota_uploads.sigv4 import Credentials, S3Presigner
from tests.support.dynamodb import running_moto

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration
BUCKET = "presigned-checks"
ORIGIN = "http://page.local"
KEYS = [
    "u1/plain.bin",
    "u1/my file (1).bin",
    "u1/naïve ✓ 日本語.bin",
    "u1/a+b=c&d;e,f@g$h!.bin",
    "u1/~tilde*'quote'.bin",
]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with running_moto(AtomicMotoServer) as url:
        client(url).create_bucket(Bucket=BUCKET)
        client(url).put_bucket_cors(
            Bucket=BUCKET,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedMethods": ["PUT"],
                        "AllowedOrigins": [ORIGIN],
                        "AllowedHeaders": ["content-type", "if-none-match"],
                        "ExposeHeaders": ["ETag"],
                    }
                ]
            },
        )
        yield url


def client(endpoint: str, access_key: str = "local", secret_key: str = "local") -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def presigner(endpoint: str, secret_key: str = "local", access_key: str = "local") -> S3Presigner:
    return S3Presigner(
        bucket=BUCKET,
        region="us-east-1",
        endpoint_url=endpoint,
        credentials=lambda: Credentials(access_key, secret_key),
    )


@pytest.fixture(params=["hand-written", "botocore"])
def signer(request: pytest.FixtureRequest, endpoint: str) -> UploadSigner:
    """The API's signer both ways it signs: by hand, and through botocore."""
    s3 = client(endpoint)
    hand = presigner(endpoint) if request.param == "hand-written" else None
    return UploadSigner(BUCKET, lambda: s3, hand)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A folder of its own for each test, so tests share the bucket but no keys."""
    return f"t/{request.node.name}/"


@pytest.fixture
def key(prefix: str) -> str:
    return prefix + KEYS[3]


def put(grant: PresignedPut, body: bytes, **headers: str) -> requests.Response:
    """The PUT a browser makes: Content-Length comes from the body, never from the grant."""
    sent = {name: value for name, value in grant.headers.items() if name != "Content-Length"}
    return requests.put(grant.url, data=body, headers={**sent, **headers}, timeout=10)


def error_of(answer: requests.Response) -> tuple[int, str]:
    assert answer.headers["Content-Type"] == "application/xml", answer.text
    root = ElementTree.fromstring(answer.content)
    assert root.tag == "Error"
    return answer.status_code, root.findtext("Code", "")


def stored(endpoint: str, key: str) -> bool:
    listed = client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])
    return any(item["Key"] == key for item in listed)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("name", KEYS)
def test_the_exact_request_is_stored(
    endpoint: str, signer: UploadSigner, prefix: str, name: str
) -> None:
    key = prefix + name
    body = b"exactly these bytes"
    grant = signer.put(
        key=key, size=len(body), content_type="text/plain", checksum_sha256=None, expires_in=60
    )
    answer = put(grant, body)
    assert answer.status_code == 200, answer.text
    got = client(endpoint).get_object(Bucket=BUCKET, Key=key)
    assert (got["Body"].read(), got["ContentType"]) == (body, "text/plain")


def test_a_checksummed_request_is_stored_and_a_wrong_checksum_header_refused(
    endpoint: str, signer: UploadSigner, key: str
) -> None:
    body = b"checked"
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    grant = signer.put(
        key=key, size=len(body), content_type="text/plain", checksum_sha256=digest, expires_in=60
    )
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    assert error_of(put(grant, body, **{"x-amz-checksum-sha256": other})) == (
        403,
        "SignatureDoesNotMatch",
    )
    assert not stored(endpoint, key)
    assert put(grant, body).status_code == 200


@dataclass(frozen=True)
class Variant:
    """One way a request departs from what was signed, and S3's answer to it."""

    send: Callable[[PresignedPut, bytes], requests.Response]
    status: int
    code: str


def _tampered_signature(grant: PresignedPut, body: bytes) -> requests.Response:
    signature = dict(parse_qsl(urlsplit(grant.url).query))["X-Amz-Signature"]
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
    return put(
        PresignedPut(with_query(grant.url, **{"X-Amz-Signature": flipped}), grant.headers), body
    )


VARIANTS = {
    "body +1 byte": Variant(lambda g, b: put(g, b + b"!"), 403, "SignatureDoesNotMatch"),
    "body -1 byte": Variant(lambda g, b: put(g, b[:-1]), 403, "SignatureDoesNotMatch"),
    "another Content-Type": Variant(
        lambda g, b: put(g, b, **{"Content-Type": "text/html"}), 403, "SignatureDoesNotMatch"
    ),
    "no If-None-Match": Variant(
        lambda g, b: put(PresignedPut(g.url, {"Content-Type": "text/plain"}), b),
        403,
        "SignatureDoesNotMatch",
    ),
    "tampered signature": Variant(_tampered_signature, 403, "SignatureDoesNotMatch"),
    "longer X-Amz-Expires": Variant(
        lambda g, b: put(
            PresignedPut(with_query(g.url, **{"X-Amz-Expires": "3600"}), g.headers), b
        ),
        403,
        "SignatureDoesNotMatch",
    ),
    "another key in the path": Variant(
        lambda g, b: put(PresignedPut(g.url.replace("/t/", "/T/", 1), g.headers), b),
        403,
        "SignatureDoesNotMatch",
    ),
    "unsigned x-amz-acl": Variant(
        lambda g, b: put(g, b, **{"x-amz-acl": "public-read"}), 403, "AccessDenied"
    ),
    "unsigned x-amz-meta-": Variant(
        lambda g, b: put(g, b, **{"x-amz-meta-owner": "mallory"}), 403, "AccessDenied"
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_an_altered_request_is_refused_and_stores_nothing(
    endpoint: str, signer: UploadSigner, key: str, variant: str
) -> None:
    body = b"0123456789"
    grant = signer.put(
        key=key, size=len(body), content_type="text/plain", checksum_sha256=None, expires_in=60
    )
    expected = VARIANTS[variant]
    answer = expected.send(grant, body)
    assert error_of(answer) == (expected.status, expected.code), answer.text
    assert not stored(endpoint, key)
    # The URL itself is still good: only the departure was refused.
    assert put(grant, body).status_code == 200


def test_an_expired_url_is_refused(endpoint: str, key: str) -> None:
    headers = {"Content-Type": "text/plain", "Content-Length": "3", "If-None-Match": "*"}
    signed_at = datetime.now(UTC) - timedelta(seconds=61)
    url = presigner(endpoint).presign_put(key, headers=headers, expires_in=60, now=signed_at)
    answer = put(PresignedPut(url, headers), b"abc")
    assert error_of(answer) == (403, "AccessDenied")
    root = ElementTree.fromstring(answer.content)
    assert root.findtext("Message") == "Request has expired"
    assert root.findtext("X-Amz-Expires") == "60"
    assert not stored(endpoint, key)
    # Signed a second later, the same request is within its minute.
    url = presigner(endpoint).presign_put(
        key, headers=headers, expires_in=60, now=signed_at + timedelta(seconds=5)
    )
    assert put(PresignedPut(url, headers), b"abc").status_code == 200


def test_a_url_signed_with_another_secret_or_key_is_refused(endpoint: str, key: str) -> None:
    headers = {"Content-Length": "3"}
    forged = presigner(endpoint, secret_key="guess").presign_put(
        key, headers=headers, expires_in=60
    )
    assert error_of(put(PresignedPut(forged, headers), b"abc")) == (403, "SignatureDoesNotMatch")
    stranger = presigner(endpoint, access_key="AKIDSTRANGER").presign_put(
        key, headers=headers, expires_in=60
    )
    assert error_of(put(PresignedPut(stranger, headers), b"abc")) == (403, "InvalidAccessKeyId")
    assert not stored(endpoint, key)


@pytest.mark.parametrize("change", [+1, -1])
def test_a_part_of_another_length_is_refused(
    endpoint: str, signer: UploadSigner, key: str, change: int
) -> None:
    s3 = client(endpoint)
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    size = 5 * 1024 * 1024
    part = signer.part(key=key, s3_upload_id=upload_id, part_number=1, size=size, expires_in=60)
    answer = put(part, b"p" * (size + change))
    assert error_of(answer) == (403, "SignatureDoesNotMatch")
    assert s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id).get("Parts", []) == []

    assert put(part, b"p" * size).status_code == 200
    last = signer.part(key=key, s3_upload_id=upload_id, part_number=2, size=7, expires_in=60)
    assert error_of(put(last, b"q" * (7 + change))) == (403, "SignatureDoesNotMatch")
    assert put(last, b"q" * 7).status_code == 200
    parts = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, size), (2, 7)]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
        },
    )
    assert client(endpoint).head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size + 7


def test_if_none_match_still_refuses_to_overwrite(signer: UploadSigner, key: str) -> None:
    grant = signer.put(
        key=key, size=3, content_type="text/plain", checksum_sha256=None, expires_in=60
    )
    assert put(grant, b"one").status_code == 200
    assert error_of(put(grant, b"two")) == (412, "PreconditionFailed")


def test_the_error_is_s3s_xml_and_shows_what_was_signed(endpoint: str, key: str) -> None:
    headers = {"Content-Type": "text/plain", "Content-Length": "4"}
    url = presigner(endpoint).presign_put(key, headers=headers, expires_in=60)
    answer = put(PresignedPut(url, headers), b"five!")
    root = ElementTree.fromstring(answer.content)
    assert [child.tag for child in root] == [
        "Code",
        "Message",
        "AWSAccessKeyId",
        "StringToSign",
        "SignatureProvided",
        "StringToSignBytes",
        "CanonicalRequest",
        "CanonicalRequestBytes",
        "RequestId",
        "HostId",
    ]
    assert root.findtext("Message", "").startswith("The request signature we calculated")
    assert (
        root.findtext("SignatureProvided")
        == dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    )
    # The canonical request holds the length as received, which is why it does not match.
    canonical = root.findtext("CanonicalRequest", "")
    assert "\ncontent-length:5\n" in canonical
    assert canonical.endswith("\nUNSIGNED-PAYLOAD")
    assert answer.headers["x-amz-request-id"] == root.findtext("RequestId")


def test_a_refusal_carries_the_buckets_cors_headers_so_a_page_can_read_it(
    endpoint: str, key: str
) -> None:
    headers = {"Content-Type": "text/plain", "Content-Length": "3"}
    url = presigner(endpoint).presign_put(key, headers=headers, expires_in=60)
    allowed = put(PresignedPut(url, headers), b"four", Origin=ORIGIN)
    assert allowed.status_code == 403
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Expose-Headers"] == "ETag"
    other = put(PresignedPut(url, headers), b"four", Origin="http://elsewhere")
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers
    # The preflight itself is never signed, and is answered from the CORS rules alone.
    preflight = requests.options(
        url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}, timeout=5
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_large_refused_body_still_gets_its_answer(endpoint: str, key: str) -> None:
    headers = {"Content-Length": str(16 * 1024 * 1024)}
    url = presigner(endpoint).presign_put(key, headers=headers, expires_in=60)
    answer = put(PresignedPut(url, headers), b"x" * (16 * 1024 * 1024 + 1))
    assert error_of(answer) == (403, "SignatureDoesNotMatch")


def test_presigned_gets_are_checked_too(endpoint: str, key: str) -> None:
    s3 = client(endpoint)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"readable")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
    assert requests.get(url, timeout=5).content == b"readable"
    tampered = with_query(url, **{"response-content-type": "text/html"})
    assert error_of(requests.get(tampered, timeout=5)) == (403, "SignatureDoesNotMatch")


def test_a_query_signature_beside_an_authorization_header_is_refused(
    endpoint: str, key: str
) -> None:
    headers = {"Content-Length": "3"}
    url = presigner(endpoint).presign_put(key, headers=headers, expires_in=60)
    answer = put(PresignedPut(url, headers), b"abc", Authorization="AWS4-HMAC-SHA256 anything")
    assert error_of(answer) == (400, "InvalidArgument")
    assert not stored(endpoint, key)


def test_requests_signed_in_the_authorization_header_pass_unchanged(
    endpoint: str, key: str
) -> None:
    s3 = client(endpoint)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"by botocore", ACL="private")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [(key, 11)]
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert not stored(endpoint, key)
