"""The straightforward handler the benchmark compares against; not part of the product.

Written the obvious way: clients made at import, Powertools Logger, Metrics and the validated
resolver, a conditional ``update_item`` and botocore's presigner per upload, and one ``ADD``
per S3 record through Powertools' BatchProcessor.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

TABLE = os.environ["TABLE_NAME"]
BUCKET = os.environ["BUCKET_NAME"]
QUOTA = int(os.environ.get("DEFAULT_QUOTA_BYTES", str(1024**3)))

dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)
processor = BatchProcessor(event_type=EventType.SQS)


class UploadRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    contentType: str


@app.post("/uploads")
def start_upload(request: UploadRequest) -> Response[Any]:
    sub = app.current_event.request_context.authorizer.jwt_claim["sub"]
    upload_id = uuid.uuid4().hex
    key = f"users/{sub}/{upload_id}/{request.filename}"
    try:
        dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"USER#{sub}"}, "sk": {"S": "USAGE"}},
            UpdateExpression="ADD reservedBytes :size",
            ConditionExpression="attribute_not_exists(reservedBytes) OR reservedBytes <= :limit",
            ExpressionAttributeValues={
                ":size": {"N": str(request.size)},
                ":limit": {"N": str(QUOTA - request.size)},
            },
        )
    except ClientError:
        return Response(507, "application/json", json.dumps({"error": "Insufficient Storage"}))
    url = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": BUCKET,
            "Key": key,
            "ContentLength": request.size,
            "ContentType": request.contentType,
        },
        ExpiresIn=900,
    )
    metrics.add_metric(name="UploadsGranted", unit=MetricUnit.Count, value=1)
    logger.info("granted", key=key)
    body = {"uploadId": upload_id, "key": key, "url": url}
    return Response(201, "application/json", json.dumps(body))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


def record_handler(record: SQSRecord) -> None:
    for s3_record in json.loads(record.body).get("Records", []):
        obj = s3_record["s3"]["object"]
        sub = obj["key"].split("%2F")[1] if "%2F" in obj["key"] else obj["key"].split("/")[1]
        size = obj.get("size", 0) if s3_record["eventName"].startswith("ObjectCreated") else 0
        dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"USER#{sub}"}, "sk": {"S": "USAGE"}},
            UpdateExpression="ADD usedBytes :size",
            ExpressionAttributeValues={":size": {"N": str(size)}},
        )


@logger.inject_lambda_context
def events_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
