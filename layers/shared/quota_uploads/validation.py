"""Human-readable messages for request validation errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """One sentence per problem, naming the field as the client spelled it."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        message = str(error.get("msg", "is invalid"))
        if error.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
        elif location:
            parts.append(f"{'.'.join(location)}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts) or "the request is invalid"
