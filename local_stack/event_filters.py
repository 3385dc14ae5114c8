"""Lambda's event filtering (an event source's ``FilterCriteria``), for the patterns we use.

Lambda keeps a record when any of the filters' patterns matches it, and drops it otherwise
(for a stream, a dropped record counts as processed). A pattern is EventBridge's: a JSON object
whose keys name fields of the record, nested objects descend into them, and a list of values
matches a field equal to one of them (or, for an array field, holding one of them). That much
is implemented. EventBridge's content filters (``prefix``, ``anything-but``, ``numeric``,
``exists`` and the rest, written as objects inside the list) are refused when the stack starts:
ignoring one would let through records the deployed function never sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

RecordFilter = Callable[[Mapping[str, Any]], bool]


class UnsupportedFilter(ValueError):
    """A pattern the local stack cannot apply as Lambda would."""


def record_filter(filter_criteria: Mapping[str, Any] | None) -> RecordFilter:
    """A template's ``FilterCriteria`` as a test of one record (everything passes without)."""
    if not filter_criteria:
        return lambda record: True
    patterns = [_pattern(entry) for entry in filter_criteria.get("Filters", [])]
    if not patterns:
        raise UnsupportedFilter("FilterCriteria without Filters")
    return lambda record: any(_matches(pattern, record) for pattern in patterns)


def _pattern(entry: Mapping[str, Any]) -> dict[str, Any]:
    text = entry.get("Pattern")
    if not isinstance(text, str):
        raise UnsupportedFilter(f"a filter's Pattern is a JSON string, not {text!r}")
    try:
        pattern = json.loads(text)
    except ValueError as error:
        raise UnsupportedFilter(f"a filter's Pattern is not JSON: {text!r}") from error
    _check(pattern, text)
    return dict(pattern)


def _check(pattern: Any, text: str) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise UnsupportedFilter(f"a pattern (or a part of one) is a non-empty object: {text}")
    for value in pattern.values():
        if isinstance(value, dict):
            _check(value, text)
        elif not isinstance(value, list) or not value:
            raise UnsupportedFilter(f"a pattern's leaves are non-empty lists of values: {text}")
        else:
            for candidate in value:
                if isinstance(candidate, dict | list):
                    raise UnsupportedFilter(
                        f"content filters ({json.dumps(candidate)}) are not implemented"
                        f" locally, only lists of exact values: {text}"
                    )


def _matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    for name, expected in pattern.items():
        if name not in record:
            return False
        value = record[name]
        if isinstance(expected, dict):
            if not isinstance(value, Mapping) or not _matches(expected, value):
                return False
        else:
            values = value if isinstance(value, list) else [value]
            if not any(_equal(v, e) for v in values for e in expected):
                return False
    return True


def _equal(value: Any, expected: Any) -> bool:
    # JSON types must agree: true is not 1, and "5" is not 5; numbers compare as numbers.
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (value, expected))
    return (numbers or type(value) is type(expected)) and bool(value == expected)
