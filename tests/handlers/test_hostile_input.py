"""Every request of the hostile corpus, in-process: a JSON 4xx, never a 5xx or a grant."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.support.hostile_requests import CORPUS, GOOD_UPLOAD, Hostile
from tests.support.lambdas import http_event, invoke


@pytest.fixture(autouse=True)
def _moto(aws: None) -> None:
    """Every test here runs against a fresh in-process moto."""


def send(case: Hostile) -> tuple[int, Any]:
    # API Gateway hands a claim array to the function flattened: ["a", "b"] as "[a b]".
    claims = {"sub": case.sub, "cognito:groups": "[" + " ".join(case.groups) + "]"}
    event = http_event(
        case.method,
        case.path,
        route=case.route,
        claims=claims,
        query=dict(case.query) or None,
        raw_body=case.body,
    )
    event["headers"]["content-type"] = case.content_type
    response = invoke("api", event)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_a_hostile_request_gets_its_4xx_in_the_apis_error_shape(case: Hostile) -> None:
    status, body = send(case)
    assert status == case.status, body
    assert set(body) == {"error", "message"}
    usage = send(Hostile("usage", "GET", "/usage", 200))[1]
    assert (usage["usedBytes"], usage["reservedBytes"]) == (0, 0)


def test_group_membership_is_exact_in_an_unflattened_claim() -> None:
    claims = {"sub": "root", "cognito:groups": ["not admins"]}
    event = http_event(
        "PUT",
        "/admin/users/u/quota",
        route="/admin/users/<userId>/quota",
        claims=claims,
        body={"quotaBytes": 5},
    )
    assert invoke("api", event)["statusCode"] == 403


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_unexpected_failure_is_a_json_500_with_the_request_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from quota_uploads import wiring

    def broken(sub: str) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(wiring.uploads(), "usage", broken)
    kept = Kept()
    # Powertools' Logger is the standard logger named after the service.
    logging.getLogger("quota-uploads").addHandler(kept)
    try:
        event = http_event("GET", "/usage", claims={"sub": "alice"})
        response = invoke("api", event)
    finally:
        logging.getLogger("quota-uploads").removeHandler(kept)
    body = json.loads(response["body"])
    assert response["statusCode"] == 500
    assert body["requestId"] == event["requestContext"]["requestId"]
    assert set(body) == {"error", "message", "requestId"}
    assert "the disk caught fire" not in response["body"]
    (logged,) = [r for r in kept.records if r.levelno == logging.ERROR]
    assert logged.exc_info is not None
    assert str(logged.exc_info[1]) == "the disk caught fire"
    assert '"ServerErrors":[1.0]' in capsys.readouterr().out


def test_a_valid_upload_still_passes_the_stricter_body_reader() -> None:
    event = http_event("POST", "/uploads", claims={"sub": "alice"}, body=GOOD_UPLOAD)
    assert invoke("api", event)["statusCode"] == 201
