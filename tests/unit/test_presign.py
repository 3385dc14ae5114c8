"""The presigned URL itself, since moto accepts any body, signature or expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from quota_uploads.presign import presign_put

SHA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.fixture
def s3() -> object:
    config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    return boto3.client("s3", region_name="us-east-1", config=config)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_url_is_sigv4_and_binds_length_type_and_no_overwrite(s3: object) -> None:
    put = presign_put(
        s3,  # type: ignore[arg-type]
        bucket="uploads-test",
        key="users/alice/0123/a b.jpg",
        size=1234,
        content_type="image/jpeg",
        checksum_sha256=None,
        expires_in=900,
    )
    params = query(put.url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "900"
    signed = params["X-Amz-SignedHeaders"].split(";")
    assert {"content-length", "content-type", "host", "if-none-match"} <= set(signed)
    assert "Signature" not in params
    assert urlsplit(put.url).netloc == "uploads-test.s3.amazonaws.com"
    assert put.headers == {
        "Content-Type": "image/jpeg",
        "Content-Length": "1234",
        "If-None-Match": "*",
    }


def test_a_checksum_is_signed_and_required_of_the_client(s3: object) -> None:
    put = presign_put(
        s3,  # type: ignore[arg-type]
        bucket="uploads-test",
        key="users/alice/0123/a.jpg",
        size=0,
        content_type="image/jpeg",
        checksum_sha256=SHA,
        expires_in=60,
    )
    assert "x-amz-checksum-sha256" in query(put.url)["X-Amz-SignedHeaders"].split(";")
    assert put.headers["x-amz-checksum-sha256"] == SHA
    assert query(put.url)["X-Amz-Expires"] == "60"
