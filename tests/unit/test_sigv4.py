"""The hand-written presigner against botocore's, byte for byte, for generated inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from quota_uploads.sigv4 import Credentials, S3Presigner

NOW = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)
ENDPOINTS = [None, "http://127.0.0.1:4566", "https://localhost", "http://localhost:80"]
# Regions of several partitions, each with its AWS::URLSuffix.
REGIONS = [
    ("us-east-1", "amazonaws.com"),
    ("eu-west-1", "amazonaws.com"),
    ("ap-southeast-2", "amazonaws.com"),
    ("cn-north-1", "amazonaws.com.cn"),
    ("us-gov-west-1", "amazonaws.com"),
]


@cache
def botocore_client(
    region: str, endpoint: str | None, token: str | None, us_east_1_regional: bool = False
) -> Any:
    s3: Any = {"addressing_style": "path" if endpoint else "virtual"}
    if us_east_1_regional:
        s3["us_east_1_regional_endpoint"] = "regional"
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3=s3),
    )


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))


keys = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=80,
)
content_types = st.sampled_from(
    ["image/jpeg", "text/plain; charset=utf-8", "application/octet-stream", 'a/b;  x="y  z"']
)


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    size=st.integers(0, 5 * 1024**3),
    content_type=content_types,
    checksum=st.none() | st.just("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
    expires=st.integers(1, 604800),
    partition=st.sampled_from(REGIONS),
    us_east_1_regional=st.booleans(),
    endpoint=st.sampled_from(ENDPOINTS),
    token=st.none() | st.text("abcXYZ019+/=", min_size=1, max_size=40),
    bucket=st.sampled_from(["uploads-123456789012-us-east-1", "quota-uploads-local-uploadsbucket"]),
)
def test_put_object_urls_are_identical_to_botocores(
    key: str,
    size: int,
    content_type: str,
    checksum: str | None,
    expires: int,
    partition: tuple[str, str],
    us_east_1_regional: bool,
    endpoint: str | None,
    token: str | None,
    bucket: str,
) -> None:
    region, suffix = partition
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "ContentLength": size,
        "ContentType": content_type,
        "IfNoneMatch": "*",
    }
    headers = {"Content-Length": str(size), "Content-Type": content_type, "If-None-Match": "*"}
    if checksum:
        params["ChecksumSHA256"] = checksum
        headers["x-amz-checksum-sha256"] = checksum
    expected = botocore_client(region, endpoint, token, us_east_1_regional).generate_presigned_url(
        "put_object", Params=params, ExpiresIn=expires, HttpMethod="PUT"
    )
    presigner = S3Presigner(
        bucket=bucket,
        region=region,
        endpoint_url=endpoint,
        dns_suffix=suffix,
        us_east_1_regional=us_east_1_regional,
        credentials=lambda: Credentials(
            "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token
        ),
    )
    assert presigner.presign_put(key, headers=headers, expires_in=expires, now=NOW) == expected


@settings(max_examples=200, deadline=None)
@given(
    key=keys,
    upload_id=st.text("abcdefXYZ0189._-/+=", min_size=1, max_size=60),
    part=st.integers(1, 10_000),
    size=st.integers(1, 5 * 1024**3),
    endpoint=st.sampled_from(ENDPOINTS),
    token=st.none() | st.just("FwoGZXIvYXdzEXAMPLE"),
)
def test_part_urls_are_identical_to_botocores(
    key: str, upload_id: str, part: int, size: int, endpoint: str | None, token: str | None
) -> None:
    bucket = "uploads-123456789012-eu-west-1"
    expected = botocore_client("eu-west-1", endpoint, token).generate_presigned_url(
        "upload_part",
        Params={
            "Bucket": bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part,
            "ContentLength": size,
        },
        ExpiresIn=900,
        HttpMethod="PUT",
    )
    presigner = S3Presigner(
        bucket=bucket,
        region="eu-west-1",
        endpoint_url=endpoint,
        credentials=lambda: Credentials(
            "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token
        ),
    )
    url = presigner.presign_put(
        key,
        headers={"Content-Length": str(size)},
        query=[("uploadId", upload_id), ("partNumber", str(part))],
        expires_in=900,
        now=NOW,
    )
    assert url == expected


@pytest.mark.parametrize(
    ("bucket", "endpoint", "style", "supported"),
    [
        ("uploads-1-us-east-1", None, "virtual", True),
        ("Uploads", None, "virtual", False),
        ("my.dotted.bucket", None, "virtual", False),
        ("uploads", "http://127.0.0.1:1", "path", True),
        ("uploads", "http://127.0.0.1:1", "virtual", False),
        ("uploads", None, "path", False),
    ],
)
def test_other_s3_settings_are_left_to_botocore(
    bucket: str, endpoint: str | None, style: str, supported: bool
) -> None:
    assert S3Presigner.supports(bucket, endpoint, style) is supported
