"""Tracing costs nothing until it is switched on, and changes no answer once it is."""

from __future__ import annotations

from typing import Any

import pytest

from quota_uploads.tracing import traced
from tests.support.fresh_process import in_a_fresh_process

FUNCTIONS = ["api", "usage_events", "reservation_sweeper", "reconcile", "audit", "usage_totals"]
IMPORTS = """
import json, sys
from local_stack.functions import load_handler
load_handler("functions/{name}", "app.lambda_handler", "{name}")
print(json.dumps("aws_xray_sdk" in sys.modules))
"""


def xray_imported(name: str, tracing: str | None) -> bool:
    imported: bool = in_a_fresh_process(IMPORTS.format(name=name), {"TRACING": tracing})
    return imported


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_xray_sdk_is_loaded_only_when_tracing_is_active(name: str) -> None:
    assert not xray_imported(name, None)
    assert not xray_imported(name, "PassThrough")
    assert xray_imported(name, "Active")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"echo": event}


def test_an_untraced_handler_is_returned_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACING", raising=False)
    assert traced(handler) is handler


def test_a_traced_handler_answers_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING", "Active")
    wrapped = traced(handler)
    assert wrapped is not handler
    assert wrapped({"a": 1}, None) == {"echo": {"a": 1}}
