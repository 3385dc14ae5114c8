from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_stack.template import create_table_request, load_template
from quota_uploads import wiring
from quota_uploads.config import Settings

TABLE = "ledger-test"
BUCKET = "uploads-test"
QUOTA = 1000

TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "TABLE_NAME": TABLE,
    "BUCKET_NAME": BUCKET,
    "DEFAULT_QUOTA_BYTES": str(QUOTA),
    "UPLOAD_URL_EXPIRY_SECONDS": "900",
    "RESERVATION_GRACE_SECONDS": "120",
    "POWERTOOLS_SERVICE_NAME": "quota-uploads",
    "POWERTOOLS_METRICS_NAMESPACE": "QuotaUploads",
    # In-process moto intercepts botocore only; the hand-written client is tested over HTTP.
    "DYNAMODB_CLIENT": "botocore",
}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield
    wiring.reset()


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def aws(template: dict[str, Any]) -> Iterator[None]:
    """In-process moto with the ledger table built from template.yaml's own definition."""
    with mock_aws():
        table = template["Resources"]["LedgerTable"]["Properties"]
        boto3.client("dynamodb").create_table(**create_table_request(table, TABLE))
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture
def s3(aws: None) -> Any:
    return boto3.client("s3")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
