"""Tracing costs nothing until it is switched on, and changes no answer once it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from local_stack.functions import ROOT
from quota_uploads.tracing import traced
from tests.conftest import TEST_ENV

FUNCTIONS = ["api", "usage_events", "reservation_sweeper", "reconcile"]
IMPORTS = """
import json, sys
from local_stack.functions import load_handler
load_handler("functions/{name}", "app.lambda_handler", "{name}")
print(json.dumps("aws_xray_sdk" in sys.modules))
"""


def xray_imported(name: str, tracing: str | None) -> bool:
    env = {**os.environ, **TEST_ENV, "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}:{ROOT}"}
    env.pop("TRACING", None)
    if tracing is not None:
        env["TRACING"] = tracing
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS.format(name=name)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    imported: bool = json.loads(out.strip().splitlines()[-1])
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
