"""Reading S3 Inventory reports: the manifest, and each CSV data file row by row.

S3 writes ``<prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json`` after the
gzip-compressed CSV data files it lists; the manifest names the columns (``fileSchema``). Keys
are URL-encoded in CSV reports. Rows are streamed: a data file is never held in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import unquote_plus


class MalformedReport(ValueError):
    """A manifest or data file this audit cannot read; the audit of that report stops."""


@dataclass(frozen=True)
class DataFile:
    key: str
    size: int


@dataclass(frozen=True)
class Manifest:
    source_bucket: str
    destination_bucket: str
    # When S3 began listing the bucket, in epoch seconds: the report shows the bucket then.
    created: int
    schema: tuple[str, ...]
    files: tuple[DataFile, ...]


class Readable(Protocol):
    def read(self, amount: int, /) -> bytes: ...


@dataclass(frozen=True)
class InventoryRow:
    key: str
    size: int


def parse_manifest(body: bytes) -> Manifest:
    try:
        document = json.loads(body)
        if document.get("fileFormat") != "CSV":
            raise MalformedReport(f"only CSV reports are read, not {document.get('fileFormat')}")
        schema = tuple(name.strip() for name in document["fileSchema"].split(","))
        if "Key" not in schema or "Size" not in schema:
            raise MalformedReport(f"the report has no Key or Size column: {schema}")
        files = tuple(DataFile(f["key"], int(f["size"])) for f in document["files"])
        destination: str = document["destinationBucket"]
        return Manifest(
            source_bucket=document["sourceBucket"],
            destination_bucket=destination.rsplit(":", 1)[-1],
            created=int(document["creationTimestamp"]) // 1000,
            schema=schema,
            files=files,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        if isinstance(error, MalformedReport):
            raise
        raise MalformedReport(f"not an S3 Inventory manifest: {error!r}") from None


def read_rows(body: Readable, schema: tuple[str, ...], skip: int = 0) -> Iterator[InventoryRow]:
    """The rows of a gzip CSV data file from row ``skip`` on (keys decoded)."""
    key_at, size_at = schema.index("Key"), schema.index("Size")
    # Read front to back, GzipFile never seeks: S3's streaming body cannot.
    unzipped = gzip.GzipFile(fileobj=cast(Any, body), mode="rb")
    text = io.TextIOWrapper(unzipped, encoding="utf-8", newline="")
    # Encoded keys hold no line breaks, so a row is a line and skipping needs no CSV parsing.
    for fields in csv.reader(itertools.islice(text, skip, None)):
        yield _row(fields, key_at, size_at)


def _row(fields: list[str], key_at: int, size_at: int) -> InventoryRow:
    try:
        return InventoryRow(unquote_plus(fields[key_at]), int(fields[size_at] or 0))
    except (IndexError, ValueError):
        raise MalformedReport(f"not an inventory row: {fields!r}") from None


def manifest_key_of(record: dict[str, Any]) -> tuple[str, str] | None:
    """The bucket and key of a manifest an S3 event notification record announces."""
    s3 = record.get("s3", {})
    bucket = s3.get("bucket", {}).get("name")
    key = s3.get("object", {}).get("key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    key = unquote_plus(key)
    return (bucket, key) if key.endswith("/manifest.json") else None
