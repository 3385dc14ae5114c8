"""Code run in a new interpreter: what a cold start loads, seen from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from local_stack.functions import ROOT
from tests.conftest import TEST_ENV


def in_a_fresh_process(code: str, environment: dict[str, str | None]) -> Any:
    """Runs ``code`` in a new interpreter (a cold start) with the tests' environment changed as
    given (None removes a variable); the JSON its last printed line holds."""
    env = {**os.environ, **TEST_ENV, "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}:{ROOT}"}
    for name, value in environment.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
