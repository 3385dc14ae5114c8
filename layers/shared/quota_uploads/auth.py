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
    """The caller's groups, each compared whole: ``x,admins`` or ``[admins]`` is not ``admins``.

    HTTP APIs flatten an array claim to one string, ``["a", "b"]`` becoming ``[a b]``: the outer
    brackets go, and the rest splits on whitespace only, which Cognito group names never hold.
    """
    if isinstance(raw, str):
        if raw.startswith("[") and raw.endswith("]"):
            raw = raw[1:-1]
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(g for g in raw if isinstance(g, str))
    return frozenset()
