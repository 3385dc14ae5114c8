"""Answers AWS calls in-process with canned responses, and counts them, so the benchmark
measures client-side CPU only (no network, no moto)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse

USAGE_ITEM = {
    "pk": {"S": "USER#alice"},
    "sk": {"S": "USAGE"},
    "usedBytes": {"N": "1000"},
    "reservedBytes": {"N": "2000"},
    "committedBytes": {"N": "3000"},
    "objectCount": {"N": "3"},
    "openReservations": {"N": "1"},
}
ANSWERS: dict[str, dict[str, Any]] = {
    "UpdateItem": {"Attributes": USAGE_ITEM},
    "GetItem": {"Item": USAGE_ITEM},
    "TransactWriteItems": {},
    "PutItem": {},
}
calls: Counter[str] = Counter()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _answer(request: Any, **_: Any) -> AWSResponse:
    operation = request.headers.get("X-Amz-Target", b"")
    operation = (operation.decode() if isinstance(operation, bytes) else operation).split(".")[-1]
    calls[operation] += 1
    if operation == "BatchGetItem":
        tables = json.loads(request.body)["RequestItems"]
        body: dict[str, Any] = {"Responses": {name: [] for name in tables}, "UnprocessedKeys": {}}
    else:
        body = ANSWERS[operation]
    return AWSResponse(request.url, 200, {}, _Raw(json.dumps(body).encode()))


def install(events: Any) -> None:
    """Answers every DynamoDB call made through clients of this event emitter."""
    events.register("before-send.dynamodb", _answer)
