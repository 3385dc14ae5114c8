"""The local S3's presigned-URL checks without a server: WSGI environs built by hand."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIEnvironment
from xml.etree import ElementTree

import boto3
import pytest
from botocore.config import Config

from local_stack.presigned import PresignedUrlGuard, S3Error, raw_path, verify
from quota_uploads.sigv4 import Credentials, S3Presigner

SIGNED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ENDPOINT = "http://127.0.0.1:4566"
KEYS = {"local": "local"}
HEADERS = {"Content-Type": "text/plain", "Content-Length": "5", "If-None-Match": "*"}


def signed_url(key: str = "u1/a file+✓.bin", expires_in: int = 60) -> str:
    signer = S3Presigner(
        bucket="bucket",
        region="us-east-1",
        endpoint_url=ENDPOINT,
        credentials=lambda: Credentials("local", "local"),
    )
    return signer.presign_put(key, headers=HEADERS, expires_in=expires_in, now=SIGNED_AT)


def werkzeug_target(sent: bytes) -> str:
    """The request target as werkzeug's server passes it on in ``RAW_URI``."""
    return sent.decode("iso-8859-1").encode().decode("latin-1")


def environ(url: str, method: str = "PUT", **headers: str) -> WSGIEnvironment:
    """What werkzeug's server hands the application for this request."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "RAW_URI": werkzeug_target(target.encode()),
        "PATH_INFO": "unused: the raw path is what was signed",
        "QUERY_STRING": parts.query,
        "HTTP_HOST": parts.netloc,
        "wsgi.input": io.BytesIO(b"hello"),
    }
    for name, value in {**HEADERS, **headers}.items():
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return env


def refusal(env: WSGIEnvironment, now: datetime = SIGNED_AT) -> tuple[int, str, str]:
    with pytest.raises(S3Error) as raised:
        verify(env, KEYS, now)
    return raised.value.status, raised.value.code, raised.value.message


def test_the_request_as_signed_passes_until_its_expiry() -> None:
    verify(environ(signed_url()), KEYS, SIGNED_AT)
    verify(environ(signed_url()), KEYS, SIGNED_AT + timedelta(seconds=60))
    later = SIGNED_AT + timedelta(seconds=60, microseconds=1)
    assert refusal(environ(signed_url()), later) == (403, "AccessDenied", "Request has expired")


def test_botocore_presigned_urls_pass() -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = s3.generate_presigned_url(
        "upload_part",
        Params={"Bucket": "bucket", "Key": "k ✓", "UploadId": "a+b/c=", "PartNumber": 3},
    )
    verify(environ(url), KEYS, datetime.now(UTC))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("X-Amz-Expires=60", "X-Amz-Expires=604801"), "must be less than a week"),
        (("X-Amz-Expires=60", "X-Amz-Expires=soon"), "should be a number"),
        (("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=HMAC"), "only supports"),
        (("%2Fs3%2F", "%2Fsqs%2F"), 'incorrect service "sqs"'),
        (("local%2F", "local%2Fx%2F"), "the Credential is mal-formed"),
        (("X-Amz-Date=20260301T120000Z", "X-Amz-Date=2026-03-01"), "ISO8601 Long Format"),
        (("&X-Amz-Date=20260301T120000Z", ""), "requires the X-Amz-Algorithm"),
    ],
)
def test_malformed_query_parameters_are_400s(change: tuple[str, str], expected: str) -> None:
    url = signed_url().replace(*change)
    status, code, message = refusal(environ(url))
    assert (status, code) == (400, "AuthorizationQueryParametersError")
    assert expected in message


def test_an_unknown_access_key_is_refused() -> None:
    url = signed_url().replace("X-Amz-Credential=local", "X-Amz-Credential=AKIDOTHER")
    assert refusal(environ(url))[:2] == (403, "InvalidAccessKeyId")


def test_unsigned_amz_headers_are_named_and_sha256_is_not_counted() -> None:
    env = environ(signed_url(), **{"x-amz-acl": "private", "x-amz-content-sha256": "UNSIGNED"})
    with pytest.raises(S3Error) as raised:
        verify(env, KEYS, SIGNED_AT)
    assert dict(raised.value.details) == {"HeadersNotSigned": "x-amz-acl"}


def test_the_path_is_taken_raw_from_the_request_line() -> None:
    url = signed_url()
    assert raw_path(environ(url)) == urlsplit(url).path
    # werkzeug passes the request line on as UTF-8 read as latin-1; raw bytes a client should
    # have escaped come back escaped, the way a browser sends them.
    assert raw_path({"RAW_URI": werkzeug_target("/b/k ✓?x=1".encode())}) == "/b/k%20%E2%9C%93"
    assert raw_path({"RAW_URI": "/b/k ✓"}) == "/b/k%20%E2%9C%93"
    assert raw_path({"RAW_URI": "http://host:1/b/k%2B?x"}) == "/b/k%2B"
    assert raw_path({"PATH_INFO": "/b/k+ ✓".encode().decode("latin-1")}) == "/b/k%2B%20%E2%9C%93"


class App:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, env: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.calls.append(env["REQUEST_METHOD"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"moto"]


def call(guard: PresignedUrlGuard, env: WSGIEnvironment) -> tuple[str, dict[str, str], bytes]:
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer.extend([status, dict(headers)])

    body = b"".join(guard(env, start_response))
    return answer[0], answer[1], body


def test_a_refused_request_never_reaches_moto_and_its_body_is_read() -> None:
    app = App()
    guard = PresignedUrlGuard(app, KEYS, clock=lambda: SIGNED_AT)
    env = environ(signed_url(), **{"Content-Length": "6"})
    env["wsgi.input"] = io.BytesIO(b"hello!")
    status, headers, body = call(guard, env)
    assert status == "403 Forbidden"
    assert headers["Content-Type"] == "application/xml"
    assert ElementTree.fromstring(body).findtext("Code") == "SignatureDoesNotMatch"
    assert env["wsgi.input"].read() == b""
    assert app.calls == []


def test_preflights_header_signed_and_unsigned_requests_pass_through() -> None:
    app = App()
    guard = PresignedUrlGuard(app, KEYS, clock=lambda: SIGNED_AT + timedelta(days=1))
    expired = signed_url()
    assert call(guard, environ(expired, method="OPTIONS"))[0] == "200 OK"
    plain = environ(f"{ENDPOINT}/bucket/key", Authorization="AWS4-HMAC-SHA256 Credential=...")
    assert call(guard, plain)[0] == "200 OK"
    assert call(guard, environ(f"{ENDPOINT}/bucket/key?uploads"))[0] == "200 OK"
    assert call(guard, environ(expired))[0] == "403 Forbidden"
    assert app.calls == ["OPTIONS", "PUT", "PUT"]
