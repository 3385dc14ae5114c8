"""Reading request bodies safely, and human-readable messages for what is wrong with them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# No size or quota has more digits (DynamoDB numbers hold 38); Python's own limit is 4,300, and
# converting a number near it costs milliseconds of CPU a client should not be able to order.
MAX_INTEGER_DIGITS = 40


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a number has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins; a proxy and we must read the same body.
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return found


def parse_json_object(text: str | bytes) -> dict[str, Any]:
    """The request body as a JSON object; ``JSONDecodeError`` for anything else.

    The API's bodies are objects: an array (a batch of requests, say) is refused rather than
    read as its first element, and an object naming a key twice rather than read by its last.
    Too deep a nesting or too long a number is refused as invalid JSON instead of surfacing as
    an interpreter error (a 500).
    """
    source = text.decode() if isinstance(text, bytes) else text
    try:
        value = json.loads(
            source,
            parse_int=_integer,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("the JSON is nested too deeply", source, 0) from None
    except ValueError as error:
        raise json.JSONDecodeError(str(error), source, 0) from None
    if not isinstance(value, dict):
        raise json.JSONDecodeError("the body must be a JSON object", source, 0)
    return value


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """One sentence per problem, naming the field as the client spelled it."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        message = str(error.get("msg", "is invalid"))
        if error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",):
            parts.append("the request needs a JSON body")
        elif error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error")
            parts.append(f"the request body is not valid JSON ({reason})")
        elif location:
            parts.append(f"{'.'.join(location)}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts) or "the request is invalid"
