"""DynamoDB Local or a moto server with the ledger table, its clients (botocore's and the
hand-written one the API uses), and an item's size as DynamoDB bills it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local_stack.dynamodb_local import running_dynamodb_local
from local_stack.processes import free_port
from local_stack.template import create_table_request
from quota_uploads.dynamodb_fast import FastDynamoDB
from quota_uploads.sigv4 import Credentials

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@contextmanager
def ledger_table_on_dynamodb_local(template: Mapping[str, Any], name: str) -> Iterator[str]:
    """DynamoDB Local, in memory, holding the template's ledger table as ``name``."""
    with running_dynamodb_local() as endpoint:
        create_ledger_table(endpoint, template, name)
        yield endpoint


@contextmanager
def running_moto(server: type[ThreadedMotoServer] = ThreadedMotoServer) -> Iterator[str]:
    """A moto server on a free local port, starting empty, stopped on exit."""
    port = free_port()
    running = server(ip_address="127.0.0.1", port=port, verbose=False)
    running.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        # moto keeps its state per process, shared by every server in it: start from nothing.
        reset_moto(endpoint)
        yield endpoint
    finally:
        running.stop()


def reset_moto(endpoint: str) -> None:
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    ).close()


def create_ledger_table(endpoint: str, template: Mapping[str, Any], name: str) -> None:
    table = template["Resources"]["LedgerTable"]["Properties"]
    local_client(endpoint).create_table(**create_table_request(table, name))


def local_client(endpoint: str) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(max_pool_connections=64, retries={"mode": "standard"}),
    )


def fast_local_client(endpoint: str) -> DynamoDBClient:
    """The hand-written client, typed as the client it stands in for (as wiring.dynamodb does)."""
    fast = FastDynamoDB(
        region="us-east-1",
        endpoint_url=endpoint,
        credentials=lambda: Credentials("local", "local"),
        botocore_client=lambda: local_client(endpoint),
    )
    return cast("DynamoDBClient", fast)


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB bills it: names and values, numbers by significant digits,
    booleans and nulls one byte."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            digits = value["N"].lstrip("-").replace(".", "").strip("0")
            size += (len(digits) + 1) // 2 + 1
        elif "BOOL" in value or "NULL" in value:
            size += 1
        else:
            raise ValueError(f"no size rule for attribute {name}: {value}")
    return size
