"""Alert levels: announced once when crossed, re-armed only well below the line."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from quota_uploads.alerts import EXHAUSTED, NONE, THRESHOLD, AlertPolicy
from quota_uploads.config import Settings
from quota_uploads.ledger import Ledger
from quota_uploads.s3_events import parse_notification
from tests.conftest import QUOTA
from tests.support.s3_notifications import notification, record

policy = AlertPolicy(threshold_percent=80, rearm_percent=70)


@pytest.mark.parametrize(
    ("used", "level"),
    [
        (0, NONE),
        (799, NONE),
        (800, THRESHOLD),
        (999, THRESHOLD),
        (1000, EXHAUSTED),
        (5000, EXHAUSTED),
    ],
)
def test_levels_follow_the_percentages(used: int, level: int) -> None:
    assert policy.level(used, 1000) == level


def test_rearm_marks_sit_below_their_levels() -> None:
    assert policy.rearm_bytes(THRESHOLD, 1000) == 700
    assert policy.rearm_bytes(EXHAUSTED, 1000) == 900


def test_a_zero_quota_is_exhausted_by_any_byte() -> None:
    assert policy.level(1, 0) == EXHAUSTED
    assert policy.level(0, 0) == NONE
    assert AlertPolicy().floor_bytes(THRESHOLD, 0) == 0


_seq = itertools.count(1)


@pytest.fixture
def ledger(dynamodb: Any, settings: Settings) -> Ledger:
    return Ledger(dynamodb, settings)


def store(ledger: Ledger, name: str, size: int | None) -> list[str]:
    """Creates (size) or deletes (None) users/alice/<name>; the levels crossed by that change."""
    event = record(
        f"users/alice/{name}", created=size is not None, size=size, sequencer=f"{next(_seq):08X}"
    )
    applied = ledger.apply_events(parse_notification(notification(event)))
    assert applied.failed == set()
    return [c.name for c in applied.crossings]


def test_each_level_is_announced_once_and_rearmed_below_its_mark(ledger: Ledger) -> None:
    assert QUOTA == 1000
    assert store(ledger, "a", 500) == []
    assert store(ledger, "b", 300) == ["threshold"]
    assert store(ledger, "c", 10) == []
    assert store(ledger, "c", None) == []
    assert store(ledger, "c", 10) == []  # hovering at the line: no new notice
    assert store(ledger, "d", 190) == ["exhausted"]
    assert store(ledger, "d", None) == []  # 810: below 90%, so 100% re-arms
    assert store(ledger, "d", 190) == ["exhausted"]
    assert store(ledger, "b", None) == []  # 700: not below 70%
    assert store(ledger, "a", None) == []  # 200: re-armed
    assert store(ledger, "e", 700) == ["threshold"]


def test_a_redelivered_event_announces_nothing(ledger: Ledger) -> None:
    body = notification(record("users/alice/x", size=900))
    assert [c.name for c in ledger.apply_events(parse_notification(body)).crossings] == [
        "threshold"
    ]
    assert ledger.apply_events(parse_notification(body)).crossings == []
