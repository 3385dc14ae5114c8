"""Who is calling: the identity the JWT authorizer verified, never what the client says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quota_uploads.errors import Unauthorized
from quota_uploads.keys import is_valid_sub


@dataclass(frozen=True)
class Caller:
    sub: str
    groups: frozenset[str]


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not is_valid_sub(sub):
        raise Unauthorized("a valid bearer token is required")
    return Caller(sub=sub, groups=_groups(claims.get("cognito:groups")))


def _groups(raw: Any) -> frozenset[str]:
    # HTTP APIs flatten array claims to a string such as "[admins editors]".
    if isinstance(raw, str):
        return frozenset(raw.strip("[]").replace(",", " ").split())
    if isinstance(raw, list):
        return frozenset(g for g in raw if isinstance(g, str))
    return frozenset()
