"""Requests a hostile or broken client sends, and the 4xx each must get: one corpus, sent both
in-process to the API function and over real HTTP to the local stack."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

GOOD_UPLOAD = {"filename": "a.txt", "size": 1, "contentType": "text/plain"}
SENDER = "mallory"


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str
    status: int
    body: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    sub: str = SENDER
    groups: tuple[str, ...] = ()
    # The route template, as API Gateway names it in the event's routeKey.
    route: str | None = None


def _upload(**changes: object) -> str:
    return json.dumps({**GOOD_UPLOAD, **changes})


def _token_of(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


_QUOTA_ROUTE = "/admin/users/<userId>/quota"
_BAD_CONTENT_TYPES = {
    "CR LF": "text/plain\r\nX-Injected: 1",
    "VT": "text/plain\x0b",
    "FF": "text/plain\x0c",
    "NEL": "text/plain\x85",
    "NBSP": "text/plain\xa0",
    "U+2028": "text/plain\u2028",
    "DEL": "text/plain\x7f",
    "non-ASCII": "text/plaïn",
    "DEL in a quoted parameter": 'text/plain; a="\x7f"',
    "non-ASCII in a quoted parameter": 'text/plain; a="é"',
    "a backslash in a quoted parameter": 'text/plain; a="\\\\"',
}

CORPUS = [
    Hostile(
        "size with 5,000 digits",
        "POST",
        "/uploads",
        400,
        '{"filename": "a.txt", "size": ' + "9" * 5000 + ', "contentType": "text/plain"}',
    ),
    Hostile("a JSON array nested 1,000 deep", "POST", "/uploads", 400, "[" * 1000 + "]" * 1000),
    Hostile(
        "a field nested 100,000 deep",
        "POST",
        "/uploads",
        400,
        '{"filename": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ),
    Hostile(
        "NaN for a size", "POST", "/uploads", 400, _upload().replace('"size": 1', '"size": NaN')
    ),
    Hostile(
        "a valid body sent as text/plain",
        "POST",
        "/uploads",
        415,
        _upload(),
        content_type="text/plain",
    ),
    Hostile(
        "two upload requests in an array",
        "POST",
        "/uploads",
        400,
        json.dumps([GOOD_UPLOAD, GOOD_UPLOAD]),
    ),
    Hostile("no body", "POST", "/uploads", 400),
    Hostile(
        "a key given twice",
        "POST",
        "/uploads",
        400,
        '{"filename": "a.txt", "size": 1, "contentType": "text/plain", "size": 5000000000}',
    ),
    Hostile("nextToken garbage", "GET", "/files", 400, query=(("nextToken", "garbage"),)),
    Hostile(
        "nextToken naming another user's key",
        "GET",
        "/files",
        400,
        query=(("nextToken", _token_of("users/alice/0/a.txt")),),
    ),
    Hostile(
        "a quota beyond what JavaScript reads exactly",
        "PUT",
        "/admin/users/u/quota",
        400,
        json.dumps({"quotaBytes": 10**39}),
        groups=("admins",),
        route=_QUOTA_ROUTE,
    ),
    *(
        Hostile(f"contentType with {name}", "POST", "/uploads", 400, _upload(contentType=value))
        for name, value in _BAD_CONTENT_TYPES.items()
    ),
    *(
        Hostile(
            f"the group {group!r}",
            "PUT",
            "/admin/users/u/quota",
            403,
            json.dumps({"quotaBytes": 5}),
            groups=(group,),
            route=_QUOTA_ROUTE,
        )
        for group in ("x,admins", "[admins]", "admins,")
    ),
    *(
        Hostile(f"the user id {sub!r}", "POST", "/uploads", 401, _upload(), sub=sub)
        for sub in (".", "..")
    ),
]
