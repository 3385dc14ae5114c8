"""The shape of a multipart upload: how a declared size splits into parts S3 accepts."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartPlan:
    size: int
    part_bytes: int

    @classmethod
    def for_size(cls, size: int, preferred_part_bytes: int) -> PartPlan:
        """Parts of the preferred size, grown just enough to stay within 10,000 parts."""
        least = -(-size // MAX_PARTS)
        return cls(size=size, part_bytes=max(preferred_part_bytes, least, 1))

    @property
    def part_count(self) -> int:
        return max(1, -(-self.size // self.part_bytes))

    def part_size(self, number: int) -> int:
        """The exact length of part ``number`` (1-based); the last part takes the remainder."""
        if not 1 <= number <= self.part_count:
            raise ValueError(f"part {number} is outside 1..{self.part_count}")
        if number < self.part_count:
            return self.part_bytes
        return self.size - self.part_bytes * (self.part_count - 1)
