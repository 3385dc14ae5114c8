"""A cold start that grants an upload never imports boto3 or botocore (~240 ms of init CPU).

Powertools imports botocore's package root (a few lines, to tag its user agent); no module of
botocore itself, no session, no client, no exceptions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.functions import ROOT
from tests.conftest import TABLE, TEST_ENV
from tests.support.dynamodb import create_ledger_table, running_moto

COLD_GRANT = """
import json, sys
from tests.support.lambdas import http_event, invoke
answer = invoke("api", http_event(
    "POST", "/uploads", claims={"sub": "alice"},
    body={"filename": "a.txt", "size": 10, "contentType": "text/plain"},
))
loaded = sorted(n for n in sys.modules if n.startswith(("boto3", "botocore.")))
print(json.dumps({"status": answer["statusCode"], "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def dynamodb_endpoint(template: dict[str, Any]) -> Iterator[str]:
    with running_moto() as endpoint:
        create_ledger_table(endpoint, template, TABLE)
        yield endpoint


def test_a_cold_grant_imports_neither_boto3_nor_botocore(dynamodb_endpoint: str) -> None:
    env = {**os.environ, **TEST_ENV, "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}:{ROOT}"}
    env.pop("DYNAMODB_CLIENT")
    env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    out = subprocess.run(
        [sys.executable, "-c", COLD_GRANT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"status": 201, "loaded": []}
