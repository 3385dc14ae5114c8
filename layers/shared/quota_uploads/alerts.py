"""When a user's usage deserves a warning: the quota threshold (80% by default) and 100%.

A user who crosses a level is told once; the level re-arms only after usage falls back below
a lower mark (70% for the threshold, and as far below 100% for exhaustion), so a user hovering
at the line does not flood anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

NONE, THRESHOLD, EXHAUSTED = 0, 1, 2
LEVEL_NAMES = {THRESHOLD: "threshold", EXHAUSTED: "exhausted"}


@dataclass(frozen=True)
class AlertPolicy:
    threshold_percent: int = 80
    rearm_percent: int = 70

    def floor_bytes(self, level: int, quota: int) -> int:
        """The least usage at which ``level`` holds."""
        percent = {THRESHOLD: self.threshold_percent, EXHAUSTED: 100}[level]
        return -(-quota * percent // 100)

    def rearm_bytes(self, level: int, quota: int) -> int:
        """Usage must fall below this before ``level`` can be announced again."""
        gap = self.threshold_percent - self.rearm_percent
        percent = {THRESHOLD: self.rearm_percent, EXHAUSTED: 100 - gap}[level]
        return quota * percent // 100

    def level(self, used: int, quota: int) -> int:
        if used == 0:
            return NONE
        if used >= self.floor_bytes(EXHAUSTED, quota):
            return EXHAUSTED
        if used >= self.floor_bytes(THRESHOLD, quota):
            return THRESHOLD
        return NONE


@dataclass(frozen=True)
class Crossing:
    """A user's usage reached a level it was not at before."""

    sub: str
    level: int
    used_bytes: int
    quota_bytes: int

    @property
    def name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def percent_used(self) -> float:
        return round(100 * self.used_bytes / self.quota_bytes, 2) if self.quota_bytes else 100.0
