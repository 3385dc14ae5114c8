"""Invoking the real function handlers with the sample events saved under events/."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from local_stack.functions import ROOT, FakeContext, load_handler
from local_stack.template import load_template


@cache
def handler(function: str) -> Callable[..., Any]:
    return load_handler(f"functions/{function}", "app.lambda_handler", function)


def invoke(function: str, event: dict[str, Any]) -> Any:
    return handler(function)(event, FakeContext(function, 512))


@cache
def function_directory(logical_id: str) -> str:
    """The directory under functions/ of a template function, as ``invoke`` takes it: its
    CodeUri, whose handler (``app.lambda_handler``) is the entry point SAM calls."""
    template = load_template()
    props = template["Resources"][logical_id]["Properties"]
    assert props.get("Handler", template["Globals"]["Function"]["Handler"]) == "app.lambda_handler"
    return PurePosixPath(props["CodeUri"]).name


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event


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
