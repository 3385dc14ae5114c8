"""Lambda's FilterCriteria as the local stack applies them: exact values, nested keys, OR of
filters, and a refusal of every pattern it does not implement."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_stack.event_filters import UnsupportedFilter, record_filter


def criteria(*patterns: dict[str, Any]) -> dict[str, Any]:
    return {"Filters": [{"Pattern": json.dumps(pattern)} for pattern in patterns]}


def stream_record(sk: str, event_name: str = "MODIFY") -> dict[str, Any]:
    return {
        "eventName": event_name,
        "dynamodb": {"Keys": {"pk": {"S": "USER#alice"}, "sk": {"S": sk}}},
    }


def test_the_templates_pattern_keeps_usage_items_and_drops_registers(
    template: dict[str, Any],
) -> None:
    event = template["Resources"]["UsageTotalsFunction"]["Properties"]["Events"]["UsageChanges"]
    accepts = record_filter(event["Properties"]["FilterCriteria"])
    assert accepts(stream_record("USAGE"))
    assert not accepts(stream_record("OBJ#users/alice/f.bin"))
    assert not accepts(stream_record("RES#0123"))


def test_without_criteria_every_record_passes() -> None:
    assert record_filter(None)(stream_record("OBJ#x"))
    assert record_filter({})({})


def test_a_record_passes_when_any_filter_matches() -> None:
    accepts = record_filter(
        criteria({"eventName": ["INSERT"]}, {"dynamodb": {"Keys": {"sk": {"S": ["USAGE"]}}}})
    )
    assert accepts(stream_record("OBJ#x", "INSERT"))
    assert accepts(stream_record("USAGE", "REMOVE"))
    assert not accepts(stream_record("OBJ#x", "REMOVE"))


def test_every_key_of_a_pattern_must_match_and_be_present() -> None:
    accepts = record_filter(criteria({"eventName": ["MODIFY", "INSERT"], "dynamodb": {"X": [1]}}))
    assert not accepts(stream_record("USAGE"))  # no dynamodb.X
    assert accepts({"eventName": "INSERT", "dynamodb": {"X": 1}})
    assert not accepts({"eventName": "INSERT", "dynamodb": "not an object"})


def test_an_array_field_matches_when_it_holds_a_listed_value() -> None:
    accepts = record_filter(criteria({"tags": ["b"]}))
    assert accepts({"tags": ["a", "b"]})
    assert not accepts({"tags": ["a"]})


@pytest.mark.parametrize(
    ("value", "listed", "matches"),
    [
        ("5", 5, False),
        (5, 5.0, True),
        (True, 1, False),
        (True, True, True),
        (None, None, True),
        ("USAGE", "usage", False),
    ],
)
def test_values_match_only_with_their_json_type(value: Any, listed: Any, matches: bool) -> None:
    assert record_filter(criteria({"v": [listed]}))({"v": value}) is matches


@pytest.mark.parametrize(
    "pattern",
    [
        {"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "USAGE"}]}}}},
        {"eventName": [{"anything-but": ["REMOVE"]}]},
        {"n": [{"numeric": [">", 0]}]},
        {"dynamodb": {"NewImage": [{"exists": True}]}},
        {"eventName": []},
        {"eventName": "INSERT"},
        {},
    ],
)
def test_patterns_not_implemented_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedFilter):
        record_filter(criteria(pattern))


@pytest.mark.parametrize(
    "criteria_",
    [
        {"Filters": [{"Pattern": {"eventName": ["INSERT"]}}]},
        {"Filters": [{"Pattern": "{not json"}]},
        {"Filters": []},
    ],
)
def test_malformed_criteria_are_refused(criteria_: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedFilter):
        record_filter(criteria_)
