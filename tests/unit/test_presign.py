"""The presigned URL itself, since moto accepts any body, signature or expiry."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from quota_uploads.presign import UploadSigner
from quota_uploads.sigv4 import Credentials, S3Presigner

SHA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
BUCKET = "uploads-test"


def botocore_s3() -> Any:
    config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    return boto3.client("s3", region_name="us-east-1", config=config)


SIGNERS = {
    "botocore": UploadSigner(BUCKET, botocore_s3, None),
    "hand-written": UploadSigner(
        BUCKET,
        botocore_s3,
        S3Presigner(
            bucket=BUCKET, region="us-east-1", credentials=lambda: Credentials("AKID", "SECRET")
        ),
    ),
}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture(params=sorted(SIGNERS))
def signer(request: pytest.FixtureRequest) -> UploadSigner:
    return SIGNERS[request.param]


def test_the_url_is_sigv4_and_binds_length_type_and_no_overwrite(signer: UploadSigner) -> None:
    put = signer.put(
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


def test_a_checksum_is_signed_and_required_of_the_client(signer: UploadSigner) -> None:
    put = signer.put(
        key="users/alice/0123/a.jpg",
        size=0,
        content_type="image/jpeg",
        checksum_sha256=SHA,
        expires_in=60,
    )
    assert "x-amz-checksum-sha256" in query(put.url)["X-Amz-SignedHeaders"].split(";")
    assert put.headers["x-amz-checksum-sha256"] == SHA
    assert query(put.url)["X-Amz-Expires"] == "60"


def test_a_part_url_binds_that_parts_length(signer: UploadSigner) -> None:
    put = signer.part(key="users/a/b", s3_upload_id="xyz", part_number=7, size=40, expires_in=900)
    params = query(put.url)
    assert (params["partNumber"], params["uploadId"]) == ("7", "xyz")
    assert "content-length" in params["X-Amz-SignedHeaders"].split(";")
    assert put.headers == {"Content-Length": "40"}
