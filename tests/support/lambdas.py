"""Loading the real function handlers and the sample events saved under events/."""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeContext:
    function_name: str = "test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@cache
def handler_module(function: str) -> ModuleType:
    """functions/<function>/app.py, loaded once under a unique module name."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(function: str, event: dict[str, Any]) -> Any:
    return handler_module(function).lambda_handler(event, FakeContext())


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    body: Any = None,
    claims: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event shaped like events/http_post_uploads.json."""
    event = copy.deepcopy(sample_event("http_post_uploads"))
    event["routeKey"] = f"{method} {route or path}"
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    if raw_body is not None:
        event["body"] = raw_body
    else:
        event["body"] = None if body is None else json.dumps(body)
    event["isBase64Encoded"] = False
    if claims is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event
