"""moto's DynamoDB streams, made to record what DynamoDB records (measured on moto 5.2.5).

Two habits of moto would hand a stream's reader changes that never happened:

- An UpdateItem that creates its item first puts an item of the keys alone, then applies the
  update, and moto records both: an INSERT of the keys, then a second INSERT of the item.
  DynamoDB records one INSERT. (The store-wide totals would count the user twice.)
- A cancelled TransactWriteItems puts back a deep copy of the table taken before it, stream
  included. The records of the operations that ran before the failing one stay in the stream
  shard the copy replaced, and every shard iterator handed out so far keeps reading that shard:
  its reader sees changes that were rolled back and never another record. DynamoDB records
  nothing of a cancelled transaction.

``patch_moto_streams()`` makes moto, in this process (where the local stack and the tests run
their moto server), record neither: the keys-only INSERT is not recorded, and a cancelled
transaction leaves the table with its own stream shard, cut back to where it was.
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
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            original(self, *args, **kwargs)
        except Exception:
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    del shard.items[length:]
                    shard.table = table
                    table.stream_shard = shard
            raise

    return transact_write_items
