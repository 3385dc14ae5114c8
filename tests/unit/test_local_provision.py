"""The template provisioned on a moto server as the local stack does it: the ledger's indexes
and stream, the audit queues, the inventory configuration, and the reports bucket notifying the
audit queue of manifests only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local_stack.provision import physical_ids, provision
from local_stack.streams import StreamSource
from local_stack.template import Resolver, resources_of_type
from tests.support.dynamodb import local_client, running_moto

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@dataclass
class Provisioned:
    endpoint: str
    resolver: Resolver
    names: dict[str, str]
    s3: S3Client
    sqs: SQSClient


@pytest.fixture
def provisioned(template: dict[str, Any]) -> Iterator[Provisioned]:
    with running_moto() as endpoint:
        names = physical_ids(template, "local")
        resolver = Resolver(template, names, endpoint=endpoint)
        provision(template, resolver, aws_endpoint=endpoint, dynamodb_endpoint=endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        yield Provisioned(endpoint, resolver, names, s3, sqs)


def test_the_ledger_has_its_indexes_and_a_stream_of_both_images(
    provisioned: Provisioned,
) -> None:
    table = local_client(provisioned.endpoint).describe_table(
        TableName=provisioned.names["LedgerTable"]
    )["Table"]
    indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {"ExpiringItems", "UsersByShard"}
    assert indexes["UsersByShard"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert table.get("StreamSpecification") == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    stream_arn = provisioned.resolver.resolve({"Fn::GetAtt": ["LedgerTable", "StreamArn"]})
    assert stream_arn == table["LatestStreamArn"]


def test_a_queues_ref_is_the_url_its_queue_answers_at(provisioned: Provisioned) -> None:
    url = provisioned.sqs.get_queue_url(QueueName=provisioned.names["AuditQueue"])["QueueUrl"]
    assert provisioned.resolver.ref("AuditQueue") == url
    attributes = provisioned.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == provisioned.resolver.arn("AuditDLQ")
    assert int(redrive["maxReceiveCount"]) == 5


def test_every_functions_events_resolve_and_its_stream_source_reads(
    provisioned: Provisioned, template: dict[str, Any]
) -> None:
    functions = resources_of_type(template, "AWS::Serverless::Function")
    for function in functions.values():
        for event in function["Properties"].get("Events", {}).values():
            properties = provisioned.resolver.resolve(event.get("Properties", {}))
            if event["Type"] == "DynamoDB":
                source = StreamSource.of(properties)
                assert source.on_failure_queue_arn == provisioned.resolver.arn("AuditDLQ")


def test_the_uploads_bucket_keeps_its_inventory_configuration(provisioned: Provisioned) -> None:
    config = provisioned.s3.get_bucket_inventory_configuration(
        Bucket=provisioned.names["UploadsBucket"], Id="users-daily"
    )["InventoryConfiguration"]
    destination = config["Destination"]["S3BucketDestination"]
    assert destination["Bucket"] == provisioned.resolver.arn("ReportsBucket")
    assert (destination["Format"], destination.get("Prefix")) == ("CSV", "inventory")


def test_the_reports_bucket_announces_manifests_only(provisioned: Provisioned) -> None:
    s3, sqs = provisioned.s3, provisioned.sqs
    url = provisioned.resolver.ref("AuditQueue")
    bucket = provisioned.names["ReportsBucket"]
    folder = "inventory/src/users-daily"
    for key in (f"{folder}/data/a.csv.gz", f"{folder}/T/manifest.checksum", "x/manifest.json"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    s3.put_object(Bucket=bucket, Key=f"{folder}/T/manifest.json", Body=b"{}")
    announced = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            body = json.loads(message["Body"])
            announced += [r["s3"]["object"]["key"] for r in body.get("Records", [])]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # moto encodes keys as S3 events do (quote_plus), slashes included.
    assert announced == ["inventory%2Fsrc%2Fusers-daily%2FT%2Fmanifest.json"]
