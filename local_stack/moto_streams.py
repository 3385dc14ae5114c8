"""moto's DynamoDB streams, made to record what DynamoDB records (measured on moto 5.2.5).

Habits of moto that would hand a stream's reader changes that never happened, or stall it:

- An UpdateItem that creates its item first puts an item of the keys alone, then applies the
  update, and moto records both: an INSERT of the keys, then a second INSERT of the item.
  DynamoDB records one INSERT. (The store-wide totals would count the user twice.)
- A TransactWriteItems first deep-copies every table it writes, to put the copy back if it is
  cancelled. The copy includes the table's stream: every transaction copied every record the
  stream ever held (the local stack slowed with each write), and a cancelled one left the table
  with a new stream shard while every shard iterator handed out kept reading the old one, which
  still held the records of the operations run before the cancellation: its reader saw changes
  that were rolled back and never another record. DynamoDB records nothing of a cancelled
  transaction.

``patch_moto_streams()`` makes moto, in this process (where the local stack and its tests run
their moto server), record neither: the keys-only INSERT is not recorded, a table's copy shares
its stream shard, and a cancelled transaction cuts the shard back to where it was.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard

_local = threading.local()


def patch_moto_streams() -> None:
    """Idempotent: patches moto's classes once per process."""
    if getattr(DynamoDBBackend.update_item, "_records_as_dynamodb", False):
        return
    DynamoDBBackend.update_item = _update_item(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    StreamShard.add = _add(StreamShard.add)  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_write_items(  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items
    )
    StreamShard.__deepcopy__ = _shared  # type: ignore[attr-defined]


def _update_item(original: Any) -> Any:
    @functools.wraps(original)
    def update_item(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        # The first record this update makes, if it has no old image, is moto's keys-only put.
        _local.skip_keys_only_insert = True
        try:
            return original(self, *args, **kwargs)
        finally:
            _local.skip_keys_only_insert = False

    update_item._records_as_dynamodb = True  # type: ignore[attr-defined]
    return update_item


def _add(original: Any) -> Any:
    @functools.wraps(original)
    def add(self: StreamShard, old: Any, new: Any) -> None:
        skip = getattr(_local, "skip_keys_only_insert", False)
        _local.skip_keys_only_insert = False
        if skip and old is None:
            return
        original(self, old, new)

    return add


def _transact_write_items(original: Any) -> Any:
    @functools.wraps(original)
    def transact_write_items(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> None:
        before = {
            name: (table, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            original(self, *args, **kwargs)
        except Exception:
            for name, (table, length) in before.items():
                restored = self.tables.get(name)
                # Put back (a copy sharing its shard) means cancelled: its records go too.
                if restored is not None and restored is not table and restored.stream_shard:
                    del restored.stream_shard.items[length:]
                    restored.stream_shard.table = restored
            raise

    return transact_write_items


def _shared(self: StreamShard, memo: dict[int, Any]) -> StreamShard:
    """A table's deep copy shares its stream shard (moto copies tables only for transactions)."""
    return self
