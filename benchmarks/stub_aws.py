"""Answers AWS calls in-process with canned responses, and counts them, so the benchmark
measures client-side CPU only (no network, no moto)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from botocore.compat import HTTPHeaders
    from botocore.hooks import BaseEventHooks

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

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _body(target: str | bytes, request_body: bytes) -> bytes:
    operation = (target.decode() if isinstance(target, bytes) else target).split(".")[-1]
    calls[operation] += 1
    if operation == "BatchGetItem":
        tables = json.loads(request_body)["RequestItems"]
        body: dict[str, Any] = {"Responses": {name: [] for name in tables}, "UnprocessedKeys": {}}
    else:
        body = ANSWERS[operation]
    return json.dumps(body).encode()


def _answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    # Imported here so the hand-written client's cold start is not charged for botocore.
    from botocore.awsrequest import AWSResponse

    assert isinstance(request.body, bytes), "botocore sends DynamoDB's JSON bodies as bytes"
    body = _body(request.headers.get("X-Amz-Target", b""), request.body)
    # botocore copies any mapping into its HeadersDict; its stubs ask for HTTPHeaders only.
    return AWSResponse(request.url, 200, cast("HTTPHeaders", {}), _Raw(body))


def install(events: BaseEventHooks) -> None:
    """Answers every DynamoDB call made through clients of this event emitter."""
    # A before-send handler answers the request by returning a response; the stubs type every
    # handler as returning None.
    events.register("before-send.dynamodb", cast("Callable[..., None]", _answer))


class _Response:
    status = 200

    def __init__(self, body: bytes) -> None:
        self._body = body

    def getheader(self, name: str) -> str | None:
        return None

    def read(self) -> bytes:
        return self._body


class _Connection:
    """What ``http.client.HTTPConnection`` does for the client, minus the socket."""

    def __init__(self) -> None:
        self._response = _Response(b"")

    def request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> None:
        self._response = _Response(_body(headers["X-Amz-Target"], body))

    def getresponse(self) -> _Response:
        return self._response


def install_fast(client: Any) -> None:
    """Answers the hand-written DynamoDB client's calls the same way, after it has signed them."""
    connection = _Connection()
    client._connection = lambda: connection
