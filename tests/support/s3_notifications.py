"""S3 event notification bodies shaped like the ones S3 (and moto) put on the queue."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus


def record(
    key: str,
    *,
    created: bool = True,
    size: int | None = None,
    etag: str = "etag",
    time: str = "2026-11-24T10:00:00.000Z",
    sequencer: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": quote_plus(key)}
    if created:
        obj["size"] = size or 0
        obj["eTag"] = etag
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": time,
        "eventName": name or ("ObjectCreated:Put" if created else "ObjectRemoved:Delete"),
        "s3": {"bucket": {"name": "uploads-test"}, "object": obj},
    }


def notification(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})
