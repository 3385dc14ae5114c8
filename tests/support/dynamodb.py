"""Clients of a DynamoDB Local endpoint: botocore's, and the hand-written one the API uses."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from quota_uploads.dynamodb_fast import FastDynamoDB
from quota_uploads.sigv4 import Credentials


def local_client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(max_pool_connections=64, retries={"mode": "standard"}),
    )


def fast_local_client(endpoint: str) -> Any:
    return FastDynamoDB(
        region="us-east-1",
        endpoint_url=endpoint,
        credentials=lambda: Credentials("local", "local"),
        botocore_client=lambda: local_client(endpoint),
    )
