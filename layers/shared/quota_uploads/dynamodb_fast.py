"""The DynamoDB calls on the grant and event paths, signed and sent by hand; the rest via botocore.

``make bench`` showed botocore's request pipeline as the largest share of a grant: ~300 µs of
client CPU per ``UpdateItem`` and, on a cold start, ~240 ms to import boto3 and build a client.
``UpdateItem``, ``GetItem``, ``PutItem``, ``BatchGetItem`` and ``TransactWriteItems`` here are a
JSON body, a SigV4 ``Authorization`` header (proven identical to botocore's in
``tests/unit/test_dynamodb_fast.py``) and one keep-alive connection per thread, sent to the
regional endpoint of the partition named by its DNS suffix or to a custom endpoint
(``wiring.dynamodb`` leaves every other endpoint setting to botocore). Any other operation, the
``exceptions`` namespace, and every error go through a botocore client made on first need, so
callers see exactly botocore's classes and responses: an answer this client cannot read, a
connection that fails or stalls, is retried and then handed to botocore whole.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import select
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from quota_uploads.sigv4 import (
    Credentials,
    amz_date,
    authorization,
    canonical_headers,
    credential_scope,
    host_header,
    signature,
)

_TARGET_PREFIX = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"
# Enough for a dropped keep-alive connection or a brief throttle; a longer trouble is handed to
# botocore, whose own retry policy then applies in full.
_MAX_ATTEMPTS = 3
# The functions time out after 10 s (template.yaml, Globals). A DynamoDB call answers in
# milliseconds, so a connect or a read silent for 2 s has failed; and no attempt starts unless
# its 2 s fit in 4 s from the first, so botocore takes over within 4 s and has 6 s left to give
# the caller its answer or its error before the invocation is killed.
ATTEMPT_TIMEOUT_SECONDS = 2.0
BUDGET_SECONDS = 4.0
_RETRYABLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
}


class _Retry(Exception):
    """No usable answer (a transport failure, a garbled or a retryable one): ask again."""


class FastDynamoDB:
    def __init__(
        self,
        *,
        region: str,
        credentials: Callable[[], Credentials],
        botocore_client: Callable[[], Any],
        endpoint_url: str | None = None,
        dns_suffix: str = "amazonaws.com",
        attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS,
        budget: float = BUDGET_SECONDS,
    ) -> None:
        self.endpoint_url = endpoint_url or f"https://dynamodb.{region}.{dns_suffix}"
        parts = urlsplit(self.endpoint_url)
        self._secure = parts.scheme == "https"
        self._netloc = parts.netloc
        self._host = host_header(parts.scheme, parts.netloc)
        self._region = region
        self._credentials = credentials
        self._make_botocore = botocore_client
        self._attempt_timeout = attempt_timeout
        self._budget = budget
        self._botocore_client: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self._call("UpdateItem", params)

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self._call("PutItem", params)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("BatchGetItem", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        return self._call("TransactWriteItems", params)

    def _botocore(self) -> Any:
        """The one botocore client behind this one, made on first need.

        One per instance, made under a lock: the exception raised for an answer and the class a
        caller catches (``client.exceptions``) must come from the same client, and threads
        making their first call together would otherwise build several.
        """
        if self._botocore_client is None:
            with self._lock:
                if self._botocore_client is None:
                    client = self._make_botocore()
                    # botocore builds its exception classes on first access, unguarded.
                    _ = client.exceptions
                    self._botocore_client = client
        return self._botocore_client

    def __getattr__(self, name: str) -> Any:
        # Every other operation, ``exceptions``, ``meta`` and paginators: botocore's own.
        return getattr(self._botocore(), name)

    def _call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        body = json.dumps(params, separators=(",", ":")).encode()
        deadline = time.monotonic() + self._budget
        for attempt in range(_MAX_ATTEMPTS):
            try:
                return self._attempt(operation, body)
            except _Retry:
                self._drop_connection()
            pause = random.uniform(0, 0.05 * 2**attempt)  # noqa: S311 - jitter
            if attempt == _MAX_ATTEMPTS - 1 or (
                time.monotonic() + pause + self._attempt_timeout > deadline
            ):
                break
            time.sleep(pause)
        # Out of fast attempts or time: botocore makes the call, and raises its error if it fails.
        method = getattr(self._botocore(), _snake(operation))
        result: dict[str, Any] = method(**params)
        return result

    def _attempt(self, operation: str, body: bytes) -> dict[str, Any]:
        headers = self.signed_headers(operation, body, datetime.now(UTC))
        try:
            connection = self._connection()
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            # Timeouts and resets are OSErrors; a truncated or malformed answer, HTTPExceptions.
            raise _Retry from None
        crc = response.getheader("x-amz-crc32")
        if crc is not None and crc != str(zlib.crc32(data)):
            raise _Retry
        try:
            answer = json.loads(data)
        except ValueError:
            raise _Retry from None
        if not isinstance(answer, dict):
            raise _Retry
        if response.status == 200:
            return answer
        code = str(answer.get("__type", "")).rsplit("#", 1)[-1]
        # An error without a type did not come from DynamoDB (a proxy, a load balancer): only
        # botocore knows what to make of it.
        if not code or response.status >= 500 or code in _RETRYABLE_CODES:
            raise _Retry
        raise self._client_error(operation, response.status, code, answer)

    def _client_error(
        self, operation: str, status: int, code: str, error: Mapping[str, Any]
    ) -> Exception:
        """The exception botocore would raise for this answer, with the same response dict."""
        client = self._botocore()
        message = error.get("message", error.get("Message", ""))
        response = {
            key: value
            for key, value in error.items()
            if key not in ("__type", "message", "Message")
        }
        response["Error"] = {"Code": code, "Message": message}
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
        exception: Exception = client.exceptions.from_code(code)(response, operation)
        return exception

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and _dropped(connection):
            # The server closed it while Lambda was frozen: reconnect now rather than fail,
            # back off and retry (urllib3 makes the same check before reusing a connection).
            connection.close()
            connection = None
        if connection is None:
            if self._secure:
                connection = http.client.HTTPSConnection(
                    self._netloc, timeout=self._attempt_timeout
                )
            else:
                connection = http.client.HTTPConnection(self._netloc, timeout=self._attempt_timeout)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        """Closes this thread's connection after a failure: its state is unknown."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def signed_headers(self, operation: str, body: bytes, now: datetime) -> dict[str, str]:
        """The request's headers with SigV4 ``Authorization``, as botocore signs them."""
        credentials = self._credentials()
        date = amz_date(now)
        headers = {
            "Content-Type": _CONTENT_TYPE,
            "X-Amz-Target": _TARGET_PREFIX + operation,
            "X-Amz-Date": date,
        }
        if credentials.token is not None:
            headers["X-Amz-Security-Token"] = credentials.token
        signed, header_block = canonical_headers(headers, self._host)
        canonical_request = "\n".join(
            ["POST", "/", "", header_block, signed, hashlib.sha256(body).hexdigest()]
        )
        scope = credential_scope(date, self._region, "dynamodb")
        signed_by = signature(credentials.secret_key, date, scope, canonical_request)
        headers["Authorization"] = authorization(credentials, scope, signed, signed_by)
        return headers


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the other end.

    Between requests nothing should be readable; a readable socket means EOF (or stray bytes).
    """
    sock = connection.sock
    if sock is None:
        return False
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
