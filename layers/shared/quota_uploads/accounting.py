"""Where S3 events become ledger changes: pure functions, no I/O.

Each object is a last-writer-wins register ordered by its events' order keys. Applying a set of
events means keeping, per key, the newest of what is stored and what arrived, so duplicates and
reorderings change nothing. Usage moves by the difference between the old and new register,
which is why a delete subtracts exactly the size stored for that key.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from quota_uploads.keys import UploadTerms, upload_terms
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
class Release:
    """An upload's reservation ending because its object arrived (or, for a cancelled upload,
    its cancellation cleared)."""

    key: str
    upload_id: str
    terms: UploadTerms


@dataclass(frozen=True)
class UserChanges:
    """Everything one user's events do to the ledger, to be written atomically."""

    sub: str
    objects: tuple[ObjectChange, ...]
    released: tuple[Release, ...] = ()
    # Cancelled uploads whose object arrived all the same: charged, nothing left to release.
    uncancelled: tuple[Release, ...] = ()

    @property
    def used_delta(self) -> int:
        return sum(
            c.after.charged_bytes - (c.before.charged_bytes if c.before else 0)
            for c in self.objects
        )

    @property
    def reserved_delta(self) -> int:
        return -sum(r.terms.size for r in self.released)

    @property
    def object_count_delta(self) -> int:
        return sum(
            int(c.after.exists) - int(c.before.exists if c.before else False) for c in self.objects
        )

    @property
    def is_empty(self) -> bool:
        return not self.objects and not self.released and not self.uncancelled


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
    open_buckets: Container[int],
    open_multipart: Container[str] = (),
    cancelled: Container[str] = (),
) -> UserChanges:
    """The changes one user's events make, given the stored registers and open reservations.

    ``open_buckets`` holds the end times of the user's reservation buckets not yet swept,
    ``open_multipart`` the multipart uploads whose record still exists (not aborted), and
    ``cancelled`` the single PUTs cancelled before their object arrived. The first event ever
    seen for an upload's key ends its reservation, whatever the event says (a delete shows the
    object was created, too), and only then: the register write that records it is conditioned
    on there being no register yet, so the release happens exactly once. A cancelled upload's
    reservation has ended already; its first event only clears the cancellation.
    """
    by_key: dict[str, list[ObjectEvent]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    changes = []
    released = []
    uncancelled = []
    for key, key_events in by_key.items():
        before = stored_objects.get(key)
        after = newest(before, key_events)
        if after is None or after == before:
            continue
        changes.append(ObjectChange(key, before, after))
        upload_id = key_events[0].owner.upload_id
        terms = upload_terms(upload_id) if before is None and upload_id is not None else None
        if terms is not None and upload_id is not None:
            if upload_id in cancelled:
                uncancelled.append(Release(key, upload_id, terms))
            elif terms.expires_at in open_buckets and (
                not terms.multipart or upload_id in open_multipart
            ):
                released.append(Release(key, upload_id, terms))
    return UserChanges(sub, tuple(changes), tuple(released), tuple(uncancelled))
