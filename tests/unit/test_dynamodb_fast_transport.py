"""A server that garbles, drops or stalls the hand-written client's requests: within its budget
the client hands the call to botocore, and its caller sees botocore's answer or botocore's error.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from quota_uploads import dynamodb_fast
from quota_uploads.dynamodb_fast import FastDynamoDB
from quota_uploads.sigv4 import Credentials

KEY = {"pk": {"S": "USER#alice"}, "sk": {"S": "USAGE"}}
# A second attempt fits unless the first ends ~0.2 s late (a busy machine); a third never does.
ATTEMPT_TIMEOUT = 0.3
BUDGET = 0.85
# Thread scheduling on a busy machine, not the client's waiting.
SLACK = 0.3


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def _non_json_500(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 500, b"<html><body>Internal error</body></html>", Content_Type="text/html")


def _non_json_200(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 200, b"\xff\xfe not json", Content_Type="application/x-amz-json-1.0")


def _not_an_object(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 200, b"[]", Content_Type="application/x-amz-json-1.0")


def _bad_crc(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 200, json.dumps({"Item": KEY}).encode(), x_amz_crc32="1")


def _untyped_400(handler: BaseHTTPRequestHandler) -> None:
    # What a proxy or load balancer in the way might say.
    _send(handler, 400, b'{"message": "denied"}', Content_Type="application/json")


def _truncated(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b'{"Item": ')
    handler.close_connection = True


def _closed(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True


def _reset(handler: BaseHTTPRequestHandler) -> None:
    # Linger zero: closing sends RST rather than FIN.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True


def _hang(handler: BaseHTTPRequestHandler) -> None:
    server: _Server = handler.server  # type: ignore[assignment]
    server.released.wait()
    handler.close_connection = True


MISBEHAVIOURS: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {
    "non-JSON 500": _non_json_500,
    "non-JSON 200": _non_json_200,
    "JSON not an object": _not_an_object,
    "bad CRC": _bad_crc,
    "error without a type": _untyped_400,
    "truncated body": _truncated,
    "closed without an answer": _closed,
    "reset": _reset,
    "hangs": _hang,
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        self.rfile.read(int(self.headers["Content-Length"]))
        # botocore names itself in User-Agent; the hand-written client sends none.
        from_botocore = "Botocore" in self.headers.get("User-Agent", "")
        if not from_botocore:
            server.hand_written_requests += 1
        if from_botocore and not server.everyone:
            body = json.dumps({"Item": KEY}).encode()
            _send(self, 200, body, Content_Type="application/x-amz-json-1.0")
        else:
            server.misbehave(self)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, misbehave: Callable[[BaseHTTPRequestHandler], None], everyone: bool):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.misbehave = misbehave
        self.everyone = everyone
        self.released = threading.Event()
        self.hand_written_requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def serve() -> Iterator[Callable[[str, bool], _Server]]:
    servers: list[_Server] = []

    def start(misbehaviour: str, everyone: bool) -> _Server:
        server = _Server(MISBEHAVIOURS[misbehaviour], everyone)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.released.set()
        server.shutdown()
        server.server_close()


def botocore_client(endpoint: str) -> Any:
    # Bounded too, so a stalled server ends in botocore's own timeout error.
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(
            connect_timeout=ATTEMPT_TIMEOUT,
            read_timeout=ATTEMPT_TIMEOUT,
            retries={"max_attempts": 1},
        ),
    )


class _Timed:
    """The hand-written client under test, and when it handed over to botocore."""

    def __init__(self, endpoint: str) -> None:
        self.started = time.monotonic()
        self.handed_over: float | None = None
        self.botocore = botocore_client(endpoint)
        self.client = FastDynamoDB(
            region="us-east-1",
            endpoint_url=endpoint,
            credentials=lambda: Credentials("AKIDEXAMPLE", "secret"),
            botocore_client=self._hand_over,
            attempt_timeout=ATTEMPT_TIMEOUT,
            budget=BUDGET,
        )

    def _hand_over(self) -> Any:
        self.handed_over = time.monotonic()
        return self.botocore

    def within_budget(self) -> bool:
        return self.handed_over is not None and self.handed_over - self.started < BUDGET + SLACK


def outcome(call: Callable[[], Any]) -> Any:
    """What a caller sees: the answer without its metadata, or the error's class and code."""
    try:
        answer = call()
    except Exception as error:
        response = getattr(error, "response", None) or {}
        return type(error), response.get("Error", {}).get("Code")
    return {name: value for name, value in answer.items() if name != "ResponseMetadata"}


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_botocore_answers_what_the_hand_written_client_could_not_read(
    misbehaviour: str, serve: Callable[[str, bool], _Server]
) -> None:
    server = serve(misbehaviour, False)
    timed = _Timed(server.url)

    answer = timed.client.get_item(TableName="t", Key=KEY)

    assert outcome(lambda: answer) == {"Item": KEY}
    assert server.hand_written_requests >= 1
    assert timed.within_budget()


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_when_botocore_is_answered_the_same_the_caller_sees_what_botocore_makes_of_it(
    misbehaviour: str, serve: Callable[[str, bool], _Server]
) -> None:
    server = serve(misbehaviour, True)
    timed = _Timed(server.url)

    ours = outcome(lambda: timed.client.get_item(TableName="t", Key=KEY))

    assert timed.within_budget()
    assert ours == outcome(lambda: timed.botocore.get_item(TableName="t", Key=KEY))


def test_a_stalled_server_is_asked_only_while_a_whole_attempt_fits_the_budget(
    serve: Callable[[str, bool], _Server],
) -> None:
    server = serve("hangs", False)
    timed = _Timed(server.url)

    timed.client.get_item(TableName="t", Key=KEY)

    # 0.3 s, a pause of at most 0.05 s, 0.3 s: a third attempt would end past 0.85 s.
    assert server.hand_written_requests == 2
    assert timed.handed_over is not None
    assert timed.handed_over - timed.started >= 2 * ATTEMPT_TIMEOUT


def test_the_default_budget_leaves_botocore_most_of_the_shortest_function_timeout(
    template: dict[str, Any],
) -> None:
    default = template["Globals"]["Function"]["Timeout"]
    shortest = min(
        resource["Properties"].get("Timeout", default)
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    )
    assert dynamodb_fast.ATTEMPT_TIMEOUT_SECONDS <= dynamodb_fast.BUDGET_SECONDS
    assert shortest / 2 >= dynamodb_fast.BUDGET_SECONDS
