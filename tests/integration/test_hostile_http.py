"""The hostile corpus over real HTTP on the local stack: each answer its JSON 4xx, and the
sender's usage untouched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.hostile_requests import CORPUS, Hostile
from tests.support.local_stack_process import local_stack_process

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with local_stack_process() as stack:
        yield stack.url


def token(api: str, sub: str, groups: tuple[str, ...]) -> str:
    answer = requests.post(
        f"{api}/local/token", json={"sub": sub, "groups": list(groups)}, timeout=10
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


def usage(api: str, bearer: str) -> object:
    return requests.get(
        f"{api}/usage", headers={"Authorization": f"Bearer {bearer}"}, timeout=10
    ).json()


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_a_hostile_request_gets_its_4xx_over_http(api: str, case: Hostile) -> None:
    bearer = token(api, case.sub, case.groups)
    before = usage(api, token(api, "mallory", ()))
    answer = requests.request(
        case.method,
        f"{api}{case.path}",
        params=dict(case.query),
        data=None if case.body is None else case.body.encode(),
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": case.content_type},
        timeout=10,
    )
    assert answer.status_code == case.status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert {"error", "message"} <= set(answer.json())
    assert usage(api, token(api, "mallory", ())) == before


def test_a_token_for_a_group_name_with_whitespace_is_refused_as_cognito_would(api: str) -> None:
    answer = requests.post(
        f"{api}/local/token", json={"sub": "x", "groups": ["not admins"]}, timeout=10
    )
    assert answer.status_code == 400
