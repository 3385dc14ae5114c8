"""A cold start that grants an upload never imports boto3 or botocore (~240 ms of init CPU).

Powertools imports botocore's package root (a few lines, to tag its user agent); no module of
botocore itself, no session, no client, no exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TABLE
from tests.support.dynamodb import create_ledger_table, running_moto
from tests.support.fresh_process import in_a_fresh_process

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
    answer = in_a_fresh_process(
        COLD_GRANT, {"DYNAMODB_CLIENT": None, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint}
    )
    assert answer == {"status": 201, "loaded": []}
