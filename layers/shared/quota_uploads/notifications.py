"""Telling applications about alert crossings, through SNS, so they can email the user."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from quota_uploads.alerts import Crossing

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def crossing_message(crossing: Crossing) -> dict[str, Any]:
    return {
        "type": f"quota.{crossing.name}",
        "userId": crossing.sub,
        "usedBytes": crossing.used_bytes,
        "quotaBytes": crossing.quota_bytes,
        "percentUsed": crossing.percent_used,
    }


def publish_crossing(sns: SNSClient, topic_arn: str, crossing: Crossing) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject=f"Storage {crossing.name} reached",
        Message=json.dumps(crossing_message(crossing)),
        MessageAttributes={"level": {"DataType": "String", "StringValue": crossing.name}},
    )
