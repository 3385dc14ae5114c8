"""Where S3 events become ledger changes: pure functions, no I/O.

Each object is a last-writer-wins register ordered by its events' order keys. Applying a set of
events means keeping, per key, the newest of what is stored and what arrived, so duplicates and
reorderings change nothing. Usage moves by the difference between the old and new register,
which is why a delete subtracts exactly the size stored for that key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from quota_uploads.s3_events import ObjectEvent


@dataclass(frozen=True)
class ObjectState:
    exists: bool
    size: int
    etag: str
    order: str
    event_time: str

    @cached_property
    def stamp(self) -> str:
        """Total order of states for one key; a create and a delete at one order: the delete."""
        return f"{self.order}|{0 if self.exists else 1}|{self.etag}"

    @property
    def charged_bytes(self) -> int:
        return self.size if self.exists else 0

    @classmethod
    def of(cls, event: ObjectEvent) -> ObjectState:
        return cls(event.exists, event.size, event.etag, event.order, event.event_time)


@dataclass(frozen=True)
class ObjectChange:
    key: str
    before: ObjectState | None
    after: ObjectState


@dataclass(frozen=True)
class UserChanges:
    """Everything one user's events do to the ledger, to be written atomically."""

    sub: str
    objects: tuple[ObjectChange, ...]
    released: Mapping[str, int]

    @property
    def used_delta(self) -> int:
        return sum(
            c.after.charged_bytes - (c.before.charged_bytes if c.before else 0)
            for c in self.objects
        )

    @property
    def reserved_delta(self) -> int:
        return -sum(self.released.values())

    @property
    def object_count_delta(self) -> int:
        return sum(
            int(c.after.exists) - int(c.before.exists if c.before else False) for c in self.objects
        )

    @property
    def is_empty(self) -> bool:
        return not self.objects and not self.released


def newest(stored: ObjectState | None, events: Iterable[ObjectEvent]) -> ObjectState | None:
    best = stored
    for event in events:
        candidate = ObjectState.of(event)
        if best is None or candidate.stamp > best.stamp:
            best = candidate
    return best


def plan_user_changes(
    sub: str,
    events: Iterable[ObjectEvent],
    stored_objects: Mapping[str, ObjectState],
    open_reservations: Mapping[str, int],
) -> UserChanges:
    """The changes one user's events make, given the stored registers and open reservations.

    ``open_reservations`` maps upload id to reserved bytes. Any event showing an upload's object
    was created ends its reservation, even a stale one: the bytes arrived, whatever came after.
    """
    by_key: dict[str, list[ObjectEvent]] = {}
    released: dict[str, int] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
        upload_id = event.owner.upload_id
        if event.exists and upload_id is not None and upload_id in open_reservations:
            released[upload_id] = open_reservations[upload_id]
    changes = []
    for key, key_events in by_key.items():
        before = stored_objects.get(key)
        after = newest(before, key_events)
        if after is not None and after != before:
            changes.append(ObjectChange(key, before, after))
    return UserChanges(sub=sub, objects=tuple(changes), released=released)
