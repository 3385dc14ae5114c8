"""Creating the template's tables, queues, topics and bucket on a local AWS endpoint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3

from local_stack.inventory import configuration_request
from local_stack.template import Resolver, create_table_request, resources_of_type

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CORSRuleTypeDef, QueueConfigurationTypeDef
    from mypy_boto3_sqs.literals import QueueAttributeNameType

# The queue properties the functions' behaviour depends on, by their SQS attribute names.
_QUEUE_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "RedrivePolicy",
)


def physical_ids(template: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """Local names for every resource: lower-case so each is also a valid bucket name."""
    return {logical_id: f"{prefix}-{logical_id.lower()}" for logical_id in template["Resources"]}


def provision(
    template: Mapping[str, Any],
    resolver: Resolver,
    *,
    aws_endpoint: str,
    dynamodb_endpoint: str,
) -> None:
    """Creates what the functions use, in dependency order: tables, topics, queues, buckets."""
    names = resolver.physical_ids
    dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint)
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resolver.resolve(resource["Properties"])
        request = create_table_request(props, names[logical_id], stream=True)
        description = dynamodb.create_table(**request)["TableDescription"]
        if "LatestStreamArn" in description:
            resolver.assigned[logical_id, "StreamArn"] = description["LatestStreamArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=names[logical_id],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )

    sns = boto3.client("sns", endpoint_url=aws_endpoint)
    for logical_id in resources_of_type(template, "AWS::SNS::Topic"):
        sns.create_topic(Name=names[logical_id])

    sqs = boto3.client("sqs", endpoint_url=aws_endpoint)
    queues = resources_of_type(template, "AWS::SQS::Queue")
    for logical_id in queues:
        sqs.create_queue(QueueName=names[logical_id])
    for logical_id, resource in queues.items():
        props = resolver.resolve(resource.get("Properties", {}))
        attributes = {
            name: json.dumps(props[name]) if isinstance(props[name], dict) else str(props[name])
            for name in _QUEUE_ATTRIBUTES
            if name in props
        }
        if attributes:
            url = sqs.get_queue_url(QueueName=names[logical_id])["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)

    s3 = boto3.client("s3", endpoint_url=aws_endpoint)
    for logical_id, resource in resources_of_type(template, "AWS::S3::Bucket").items():
        props = resolver.resolve(resource.get("Properties", {}))
        bucket = names[logical_id]
        s3.create_bucket(Bucket=bucket)
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(
                Bucket=bucket,
                CORSConfiguration={
                    "CORSRules": [_cors_rule(r) for r in props["CorsConfiguration"]["CorsRules"]]
                },
            )
        for inventory in props.get("InventoryConfigurations", []):
            s3.put_bucket_inventory_configuration(
                Bucket=bucket,
                Id=inventory["Id"],
                InventoryConfiguration=configuration_request(inventory),
            )
        notifications = props.get("NotificationConfiguration", {})
        if "QueueConfigurations" in notifications:
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        _queue_notification(config)
                        for config in notifications["QueueConfigurations"]
                    ]
                },
            )


def _queue_notification(config: Mapping[str, Any]) -> QueueConfigurationTypeDef:
    notification: QueueConfigurationTypeDef = {
        "QueueArn": config["Queue"],
        "Events": [config["Event"]],
    }
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    if rules:
        notification["Filter"] = {
            "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
        }
    return notification


# The CorsRule fields the local stack translates; any other is an error, not silently dropped.
_CORS_FIELDS = {
    "AllowedMethods",
    "AllowedOrigins",
    "AllowedHeaders",
    "ExposedHeaders",
    "MaxAge",
    "Id",
}


def _cors_rule(rule: Mapping[str, Any]) -> CORSRuleTypeDef:
    """A template's CorsRule as the S3 API spells it (ExposeHeaders, MaxAgeSeconds, ID)."""
    unknown = set(rule) - _CORS_FIELDS
    if unknown:
        raise KeyError(f"CorsRule fields the local stack does not translate: {sorted(unknown)}")
    s3_rule: CORSRuleTypeDef = {
        "AllowedMethods": rule["AllowedMethods"],
        "AllowedOrigins": rule["AllowedOrigins"],
    }
    if "AllowedHeaders" in rule:
        s3_rule["AllowedHeaders"] = rule["AllowedHeaders"]
    if "ExposedHeaders" in rule:
        s3_rule["ExposeHeaders"] = rule["ExposedHeaders"]
    if "MaxAge" in rule:
        s3_rule["MaxAgeSeconds"] = rule["MaxAge"]
    if "Id" in rule:
        s3_rule["ID"] = rule["Id"]
    return s3_rule
