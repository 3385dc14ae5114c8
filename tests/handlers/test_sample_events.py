"""Every saved event under events/, invoked through the handler SAM calls, answering as
events/README.md says: on a fresh moto server holding the template's resources as the local
stack provisions them, with the function's variables as the --env-vars file gives them. Then the
events that answer 404 or fail on a fresh stack, once what they name exists; and their shapes:
every route and event source of the template covered, as API Gateway, S3 and SQS send them."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
import pytest

from local_stack.atomic_moto import AtomicMotoServer
from local_stack.functions import Route, endpoint_variables, environment_of
from local_stack.presigned import LOCAL_CREDENTIALS
from local_stack.provision import physical_ids, provision
from local_stack.sample_events import KEY, SUB, UPLOAD_ID
from local_stack.template import STACK_NAME, Resolver, resources_of_type
from quota_uploads import wiring
from tests.support.dynamodb import running_moto
from tests.support.lambdas import function_directory, invoke, sample_event
from tests.support.sample_events import EVENTS, Documented, assert_answers_as_documented, documented

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@dataclass
class LocalAws:
    endpoint: str
    resolver: Resolver
    variables: dict[str, dict[str, str]]
    monkeypatch: pytest.MonkeyPatch

    def invoke(self, function: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        """The function's answer, or the name of what it raised, with its own variables."""
        for name, value in self.variables[function].items():
            self.monkeypatch.setenv(name, value)
        wiring.reset()
        try:
            return invoke(function_directory(function), event), None
        except Exception as error:
            return None, type(error).__name__

    def s3(self) -> S3Client:
        return boto3.client("s3", endpoint_url=self.endpoint)

    def sqs(self) -> SQSClient:
        return boto3.client("sqs", endpoint_url=self.endpoint)

    def name(self, logical_id: str) -> str:
        return self.resolver.physical_ids[logical_id]


@pytest.fixture
def local_aws(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    # The handlers' own clients, as in a stack: the hand-written DynamoDB client too.
    monkeypatch.delenv("DYNAMODB_CLIENT")
    ((access_key, secret_key),) = LOCAL_CREDENTIALS.items()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    with running_moto(AtomicMotoServer) as endpoint:
        resolver = Resolver(template, physical_ids(template, STACK_NAME), endpoint=endpoint)
        provision(template, resolver, aws_endpoint=endpoint, dynamodb_endpoint=endpoint)
        variables = environment_of(template, resolver, endpoint_variables(endpoint, endpoint))
        yield LocalAws(endpoint, resolver, variables, monkeypatch)


@pytest.mark.parametrize("row", documented(), ids=str)
def test_each_event_answers_on_a_fresh_stack_as_documented(
    row: Documented, local_aws: LocalAws
) -> None:
    assert_answers_as_documented(row, *local_aws.invoke(row.function, row.event))


def test_every_event_file_is_documented_once_per_function() -> None:
    files = {path.name for path in EVENTS.glob("*.json")}
    assert {row.file for row in documented()} == files
    pairs = [(row.file, row.function) for row in documented()]
    assert len(pairs) == len(set(pairs))


def test_every_route_and_event_source_of_the_template_has_an_event(
    template: dict[str, Any],
) -> None:
    covered: dict[str, set[str]] = {}
    for row in documented():
        event = row.event
        source = event["routeKey"] if "routeKey" in event else _source_of(event)
        covered.setdefault(row.function, set()).add(source)
    for logical_id, function in resources_of_type(template, "AWS::Serverless::Function").items():
        expected = {
            f"{e['Properties']['Method'].upper()} {e['Properties']['Path']}"
            if e["Type"] == "HttpApi"
            else e["Type"]
            for e in function["Properties"]["Events"].values()
        }
        assert covered[logical_id] >= expected, logical_id


def _source_of(event: dict[str, Any]) -> str:
    if event.get("source") == "aws.events":
        return "Schedule"
    return {"aws:sqs": "SQS", "aws:dynamodb": "DynamoDB"}[event["Records"][0]["eventSource"]]


def test_api_events_are_shaped_as_api_gateway_sends_them(template: dict[str, Any]) -> None:
    rows = [row for row in documented() if row.function == "ApiFunction"]
    routes = {
        route.route_key: route
        for route in (
            Route(e["Properties"]["Method"].upper(), e["Properties"]["Path"], "ApiFunction")
            for e in template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
        )
    }
    assert {row.event["routeKey"] for row in rows} == set(routes)
    for row in rows:
        event = row.event
        route = routes[event["routeKey"]]
        assert event["requestContext"]["routeKey"] == event["routeKey"]
        parameters = route.match(route.method, event["rawPath"])
        assert parameters is not None, row
        assert event.get("pathParameters", {}) == {
            name: unquote(value) for name, value in parameters.items()
        }
        assert event["requestContext"]["http"]["path"] == event["rawPath"]
        claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        assert claims["sub"] == SUB
        assert claims["token_use"] == "id"
        assert all(isinstance(value, str) for value in claims.values()), row
        assert ("body" in event) == (event["requestContext"]["http"]["method"] in ("POST", "PUT"))
        assert event["isBase64Encoded"] is False


def test_sqs_events_come_from_the_queue_each_function_reads(template: dict[str, Any]) -> None:
    resolver = Resolver(template, physical_ids(template, STACK_NAME))
    for row in documented():
        if "Records" not in row.event or _source_of(row.event) != "SQS":
            continue
        (queue,) = [
            e["Properties"]["Queue"]["Fn::GetAtt"][0]
            for e in template["Resources"][row.function]["Properties"]["Events"].values()
            if e["Type"] == "SQS"
        ]
        for record in row.event["Records"]:
            assert record["eventSourceARN"] == resolver.arn(queue), row


def test_s3_notifications_name_the_buckets_that_notify_those_queues(
    template: dict[str, Any],
) -> None:
    names = physical_ids(template, STACK_NAME)
    notifying = {
        names[bucket]: {
            config["Queue"]["Fn::GetAtt"][0]
            for config in resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
        }
        for bucket, resource in resources_of_type(template, "AWS::S3::Bucket").items()
    }
    for name in ("sqs_s3_object_created", "sqs_s3_object_removed", "sqs_s3_multipart_complete"):
        (record,) = json.loads(sample_event(name)["Records"][0]["body"])["Records"]
        assert notifying[record["s3"]["bucket"]["name"]] == {"UsageEventsQueue"}
    (record,) = json.loads(sample_event("sqs_inventory_manifest")["Records"][0]["body"])["Records"]
    assert notifying[record["s3"]["bucket"]["name"]] == {"AuditQueue"}


def test_a_file_answers_once_it_exists(local_aws: LocalAws) -> None:
    local_aws.s3().put_object(Bucket=local_aws.name("UploadsBucket"), Key=KEY, Body=b"x" * 10)
    answer, _ = local_aws.invoke("ApiFunction", sample_event("http_get_file"))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["size"] == 10
    answer, _ = local_aws.invoke("ApiFunction", sample_event("http_delete_file"))
    assert answer["statusCode"] == 204


def _with_upload_id(name: str, upload_id: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event(name))
    event["rawPath"] = event["rawPath"].replace(UPLOAD_ID, upload_id)
    event["requestContext"]["http"]["path"] = event["rawPath"]
    event["pathParameters"]["uploadId"] = upload_id
    return event


def test_the_multipart_routes_answer_for_an_upload_in_progress(local_aws: LocalAws) -> None:
    grant = copy.deepcopy(sample_event("http_post_uploads"))
    grant["body"] = json.dumps({**json.loads(grant["body"]), "multipart": True})
    answer, _ = local_aws.invoke("ApiFunction", grant)
    assert answer["statusCode"] == 201
    upload_id = json.loads(answer["body"])["uploadId"]
    statuses = {
        name: local_aws.invoke("ApiFunction", _with_upload_id(name, upload_id))[0]["statusCode"]
        for name in (
            "http_post_upload_parts",
            "http_get_upload_parts",
            "http_post_upload_complete",
            "http_delete_upload",
        )
    }
    # Completing before any part was sent is the client's mistake: 400, from the route itself.
    assert statuses == {
        "http_post_upload_parts": 200,
        "http_get_upload_parts": 200,
        "http_post_upload_complete": 400,
        "http_delete_upload": 204,
    }


def test_a_report_named_by_the_manifest_event_starts_the_audit(local_aws: LocalAws) -> None:
    (record,) = json.loads(sample_event("sqs_inventory_manifest")["Records"][0]["body"])["Records"]
    manifest = {
        "sourceBucket": local_aws.name("UploadsBucket"),
        "destinationBucket": record["s3"]["bucket"]["arn"],
        "version": "2016-11-30",
        "creationTimestamp": "1795482000000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [],
    }
    local_aws.s3().put_object(
        Bucket=record["s3"]["bucket"]["name"],
        Key=record["s3"]["object"]["key"],
        Body=json.dumps(manifest).encode(),
    )
    answer = local_aws.invoke("AuditFunction", sample_event("sqs_inventory_manifest"))
    assert answer == ({"batchItemFailures": []}, None)
    # No data files: the comparison of every user is queued at once, a message per shard.
    # (Beside them: S3's notifications, of the bucket's configuration and of the manifest.)
    queue = local_aws.resolver.ref("AuditQueue")
    bodies = []
    while (
        messages := local_aws.sqs()
        .receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        .get("Messages")
    ):
        bodies += [json.loads(message["Body"]) for message in messages]
    assert sorted(body["shard"] for body in bodies if body.get("kind") == "users") == list(range(8))


def test_a_data_file_named_by_the_slice_event_is_counted(local_aws: LocalAws) -> None:
    work = json.loads(sample_event("sqs_audit_inventory_slice")["Records"][0]["body"])
    row = [local_aws.name("UploadsBucket"), KEY, "1048576", "2026-11-24T00:00:00.000Z", "e"]
    body = gzip.compress(("".join(f'"{field}",' for field in row)[:-1] + "\n").encode())
    local_aws.s3().put_object(Bucket=work["bucket"], Key=work["key"], Body=body)
    answer = local_aws.invoke("AuditFunction", sample_event("sqs_audit_inventory_slice"))
    assert answer == ({"batchItemFailures": []}, None)
