"""Schemathesis against the local stack, from the OpenAPI document the API generates itself.

Whatever the body, path, query or token, valid or deliberately invalid: no 5xx, and every answer
has a documented status, a documented content type and a body matching its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeAlias

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tests.support.local_stack_process import local_stack_process
from tests.support.tokens import local_token

pytestmark = pytest.mark.integration
# What an operation's strategy generates (the operation's own type parameters go unused here).
OperationCase: TypeAlias = schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]
# Per operation and generation mode, each sent with four identities: over 10,000 requests.
MAX_EXAMPLES = 140
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with local_stack_process("--parameter", "DefaultQuotaBytes=100000") as stack:
        yield stack.url


@pytest.fixture(scope="module")
def identities(api: str) -> list[dict[str, str]]:
    """Each case is sent as a user, as an admin, with a forged token and with none."""
    return [
        local_token(api, "fuzz-user").headers,
        local_token(api, "fuzz-admin", ["admins"]).headers,
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"},
        {},
    ]


def test_no_request_breaks_the_api(api: str, identities: list[dict[str, str]]) -> None:
    # Schemathesis' pytest plugin does not run under pytest 9, so each operation's strategy is
    # driven by Hypothesis directly.
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    cases_sent = 0
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    assert len(operations) == 10

    for operation in operations:
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
            )
            def send(case: OperationCase) -> None:
                nonlocal cases_sent
                for headers in identities:
                    case.call_and_validate(base_url=api, headers=headers, checks=CHECKS)
                    cases_sent += 1

            send()
    print(f"schemathesis: {cases_sent} requests over {len(operations)} operations")
    assert cases_sent >= 10_000
