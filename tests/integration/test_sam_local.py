"""``python -m local_stack --aws-only`` as ``sam local invoke`` uses it, without Docker.

The stack starts, listens beyond loopback and writes the --env-vars file: every function of the
template with every variable the template declares for it (what SAM passes on), endpoints at
``host.docker.internal``. Then each function runs as in SAM's container, in a process given only
what SAM gives the container, with ``host.docker.internal`` mapped to an address of this machine
other than loopback (as ``--add-host host.docker.internal:host-gateway`` maps it to the Docker
bridge's), and every event under events/ answers as events/README.md says, in its order.
"""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests

from local_stack.provision import physical_ids
from local_stack.sam_local import CONTAINER_HOST
from local_stack.template import STACK_NAME, resources_of_type
from tests.support.local_stack_process import RunningProcess, local_stack_process
from tests.support.sam_container import (
    container_environment,
    declared_variables,
    run_in_container,
)
from tests.support.sample_events import assert_answers_as_documented, documented

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

# What the functions' code reads with a default, and SAM's container does not set: the SDK's own
# settings (the hand-written clients read them as botocore does; AWS_SESSION_TOKEN comes only
# with session credentials, which the local pair is not), the escape hatch to botocore's
# DynamoDB client, settings the template leaves at their defaults (tests and the local stack
# change them), and the audit queue, which only the drift functions are given and use.
READ_WITH_A_DEFAULT = {
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_CONFIG_FILE",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_DATA_PATH",
    "AWS_ENDPOINT_DISCOVERY_ENABLED",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_USE_FIPS_ENDPOINT",
    "DYNAMODB_CLIENT",
    "MULTIPART_MIN_PART_BYTES",
    "MULTIPART_RESERVATION_SECONDS",
    "RECONCILE_SETTLE_SECONDS",
    "AUDIT_QUEUE_URL",
}


def outward_address() -> str:
    """This machine's address on the network it would route outward by: not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        # A UDP "connection" only picks the route (sends nothing); TEST-NET-2 is never local.
        probe.connect(("198.51.100.1", 9))
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), "no address other than loopback to test with"
    return address


@pytest.fixture(scope="module")
def address() -> str:
    return outward_address()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningProcess, Path]]:
    env_vars = tmp_path_factory.mktemp("sam") / "env.json"
    with local_stack_process(
        "--aws-only", "--env-vars", str(env_vars), "--inventory-interval", "0"
    ) as running:
        yield running, env_vars
    assert not env_vars.exists(), "the file outlived the stack"


def env_vars_of(stack: tuple[RunningProcess, Path]) -> dict[str, dict[str, str]]:
    document: dict[str, dict[str, str]] = json.loads(stack[1].read_text())
    return document


def port_of(stack: tuple[RunningProcess, Path]) -> int:
    port = urlsplit(stack[0].aws_endpoint).port
    assert port is not None
    return port


def test_the_file_gives_every_function_every_variable_the_template_declares(
    stack: tuple[RunningProcess, Path], template: dict[str, Any]
) -> None:
    env_vars = env_vars_of(stack)
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert set(env_vars) == set(functions)
    names = physical_ids(template, STACK_NAME)
    for function, variables in env_vars.items():
        # SAM passes exactly these: a name the template does not declare would be dropped.
        assert set(variables) == declared_variables(template, function), function
        assert variables["TABLE_NAME"] == names["LedgerTable"]
        assert variables["BUCKET_NAME"] == names["UploadsBucket"]
        assert variables["S3_ADDRESSING_STYLE"] == "path"
        assert variables["ALERTS_TOPIC_ARN"].endswith(f":{names['AlertsTopic']}")
    for function in ("ReconcileFunction", "AuditFunction"):
        queue = urlsplit(env_vars[function]["AUDIT_QUEUE_URL"]).path
        assert queue == f"/123456789012/{names['AuditQueue']}"


def test_every_endpoint_in_the_file_is_the_stack_as_containers_reach_it(
    stack: tuple[RunningProcess, Path],
) -> None:
    urls = [
        urlsplit(value)
        for variables in env_vars_of(stack).values()
        for value in variables.values()
        if value.startswith("http")
    ]
    assert {(url.hostname, url.port) for url in urls} == {(CONTAINER_HOST, port_of(stack))}
    endpoint_names = {
        name
        for variables in env_vars_of(stack).values()
        for name in variables
        if "ENDPOINT" in name
    }
    assert endpoint_names == {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"}


def test_s3_dynamodb_and_sqs_answer_on_an_address_other_than_loopback(
    stack: tuple[RunningProcess, Path], address: str, template: dict[str, Any]
) -> None:
    endpoint = f"http://{address}:{port_of(stack)}"
    names = physical_ids(template, STACK_NAME)
    s3: S3Client = boto3.client("s3", endpoint_url=endpoint)
    dynamodb: DynamoDBClient = boto3.client("dynamodb", endpoint_url=endpoint)
    sqs: SQSClient = boto3.client("sqs", endpoint_url=endpoint)
    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert {names["UploadsBucket"], names["ReportsBucket"]} <= buckets
    assert names["LedgerTable"] in dynamodb.list_tables()["TableNames"]
    queues = {url.rsplit("/", 1)[-1] for url in sqs.list_queues()["QueueUrls"]}
    assert {names[queue] for queue in resources_of_type(template, "AWS::SQS::Queue")} <= queues


def test_each_event_answers_as_documented_in_sams_container(
    stack: tuple[RunningProcess, Path],
    address: str,
    template: dict[str, Any],
    tmp_path: Path,
) -> None:
    env_vars = env_vars_of(stack)
    hosts = {CONTAINER_HOST: address}
    for function, rows in itertools.groupby(documented(), key=lambda row: row.function):
        batch = list(rows)
        run = run_in_container(
            template, function, [row.event for row in batch], env_vars[function], hosts, tmp_path
        )
        for row, (result, raised) in zip(batch, run.answers, strict=True):
            assert_answers_as_documented(row, result, raised)
        # Every variable the function's own code reads is in the container (from the file, or
        # SAM's own credentials and region), or one it reads with a default and is meant to.
        environment = container_environment(template, function, env_vars[function])
        assert {name for name, needed in run.reads.items() if needed} <= set(environment)
        assert set(run.reads) - set(environment) <= READ_WITH_A_DEFAULT, function
        if function == "ApiFunction":
            (grant, _) = run.answers[0]
            check_the_grant_url_takes_a_put(json.loads(grant["body"]), address, port_of(stack))


def check_the_grant_url_takes_a_put(grant: dict[str, Any], address: str, port: int) -> None:
    """The URL signed in the container names host.docker.internal; sent there (to the address it
    stands for), the local S3 checks the signature with that Host and stores the object."""
    url = urlsplit(grant["url"])
    assert (url.hostname, url.port) == (CONTAINER_HOST, port)
    response = requests.put(
        url._replace(netloc=f"{address}:{port}").geturl(),
        data=b"x" * int(grant["headers"]["Content-Length"]),
        headers={**grant["headers"], "Host": url.netloc},
        timeout=10,
    )
    assert response.status_code == 200, response.text
