"""S3 Inventory reports, written locally the way S3 writes them.

moto keeps a bucket's inventory configurations but never writes a report. This writes one for a
configuration, in S3's documented CSV layout, into the configured destination bucket:

- ``<prefix>/<source bucket>/<configuration id>/data/<uuid>.csv.gz``: gzip CSV, every field
  quoted, one object a row, columns ``Bucket, Key`` and then the optional fields in S3's column
  order (sizes in bytes, ``LastModifiedDate`` as ``2026-11-24T10:00:00.000Z``, ETags without
  their quotes). Keys are URL-encoded as S3's ``encoding-type=url`` listings encode them: spaces
  as ``+``, slashes kept, everything else outside ``A-Za-z0-9_.-~`` as ``%XX`` of its UTF-8
  bytes. A file holds at most ``rows_per_file`` rows, so a large listing spans several files.
- ``.../hive/dt=<YYYY-MM-DD-HH-MM>/symlink.txt``: the data files' ``s3://`` URLs, for Hive.
- ``.../<YYYY-MM-DDTHH-MMZ>/manifest.checksum`` (the MD5 of the manifest) and then, last,
  ``manifest.json``: S3 writes the manifest after everything it lists, and a notification on
  it is what starts the audit. ``creationTimestamp`` is when the listing began, in epoch ms.

A report of a configuration is named after its minute, and S3 writes at most one a day: a second
one in the same minute would reuse the first one's name (and the audit's run), so it is refused.
An empty listing gives a manifest without data files.

What reports here cannot honour is refused when the configuration is provisioned
(``configuration_request``): moto answers every configuration as ``IncludedObjectVersions:
All`` and spells a lone optional field letter by letter, so it could not be checked when read
back. ``python -m local_stack.inventory --endpoint URL`` writes a report of every enabled
configuration now; the stack writes them at start and then daily (``--inventory-interval``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import itertools
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import ClientError

from local_stack.presigned import LOCAL_CREDENTIALS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        InventoryConfigurationOutputTypeDef,
        InventoryConfigurationTypeDef,
        InventoryS3BucketDestinationTypeDef,
        ObjectTypeDef,
    )

logger = logging.getLogger(__name__)

# The optional fields a listing gives, in the order S3 puts its columns.
FIELDS: dict[str, Callable[[ObjectTypeDef], str]] = {
    "Size": lambda listed: str(listed["Size"]),
    "LastModifiedDate": lambda listed: _timestamp(listed["LastModified"]),
    "ETag": lambda listed: listed["ETag"].strip('"'),
    "StorageClass": lambda listed: listed.get("StorageClass", "STANDARD"),
}
ROWS_PER_FILE = 100_000
DAY_SECONDS = 86400.0

# The properties of a template's InventoryConfiguration, and of its Destination, read here.
_PROPERTIES = {
    "Id",
    "Enabled",
    "Destination",
    "IncludedObjectVersions",
    "OptionalFields",
    "Prefix",
    "ScheduleFrequency",
}
_DESTINATION = {"BucketArn", "BucketAccountId", "Format", "Prefix"}


class ReportExists(RuntimeError):
    """A report of this configuration was already written in this minute."""


@dataclass(frozen=True)
class Report:
    bucket: str
    manifest_key: str
    data_keys: tuple[str, ...]
    rows: int


def configuration_request(config: Mapping[str, Any]) -> InventoryConfigurationTypeDef:
    """A template's ``InventoryConfigurations`` entry as PutBucketInventoryConfiguration takes
    it; ValueError for anything a local report would not honour."""
    destination = config["Destination"]
    unknown = (set(config) - _PROPERTIES) | (set(destination) - _DESTINATION)
    fields = list(config.get("OptionalFields", []))
    refused = [
        reason
        for reason, wrong in (
            (f"properties {sorted(unknown)}", unknown),
            ("a format other than CSV", destination["Format"] != "CSV"),
            ("object versions", config["IncludedObjectVersions"] != "Current"),
            ("a schedule other than Daily", config["ScheduleFrequency"] != "Daily"),
            (f"optional fields {sorted(set(fields) - set(FIELDS))}", set(fields) - set(FIELDS)),
        )
        if wrong
    ]
    if refused:
        raise ValueError(f"inventory {config['Id']}: local reports have no {', '.join(refused)}")
    s3_destination: InventoryS3BucketDestinationTypeDef = {
        "Bucket": destination["BucketArn"],
        "Format": "CSV",
    }
    if "Prefix" in destination:
        s3_destination["Prefix"] = destination["Prefix"]
    if "BucketAccountId" in destination:
        s3_destination["AccountId"] = destination["BucketAccountId"]
    request: InventoryConfigurationTypeDef = {
        "Id": config["Id"],
        "IsEnabled": bool(config["Enabled"]),
        "Destination": {"S3BucketDestination": s3_destination},
        "IncludedObjectVersions": "Current",
        "Schedule": {"Frequency": "Daily"},
    }
    if fields:
        request["OptionalFields"] = fields
    if "Prefix" in config:
        request["Filter"] = {"Prefix": config["Prefix"]}
    return request


def write_reports(
    s3: S3Client, *, now: datetime | None = None, rows_per_file: int = ROWS_PER_FILE
) -> list[Report]:
    """A report of every enabled inventory configuration of every bucket on the endpoint."""
    started = now or datetime.now(UTC)
    reports = []
    for bucket in s3.list_buckets().get("Buckets", []):
        for configuration_id in _configuration_ids(s3, bucket["Name"]):
            config = _configuration(s3, bucket["Name"], configuration_id)
            if config["IsEnabled"]:
                reports.append(_write(s3, bucket["Name"], config, started, rows_per_file))
    return reports


def write_report(
    s3: S3Client,
    bucket: str,
    configuration_id: str,
    *,
    now: datetime | None = None,
    rows_per_file: int = ROWS_PER_FILE,
) -> Report:
    """A report of one configuration of ``bucket``, its listing begun at ``now``."""
    config = _configuration(s3, bucket, configuration_id)
    return _write(s3, bucket, config, now or datetime.now(UTC), rows_per_file)


def _configuration_ids(s3: S3Client, bucket: str) -> Iterator[str]:
    request = {"Bucket": bucket}
    while True:
        page = s3.list_bucket_inventory_configurations(**request)
        for config in page.get("InventoryConfigurationList", []):
            yield config["Id"]
        if not page.get("IsTruncated"):
            return
        request["ContinuationToken"] = page["NextContinuationToken"]


def _configuration(
    s3: S3Client, bucket: str, configuration_id: str
) -> InventoryConfigurationOutputTypeDef:
    config = s3.get_bucket_inventory_configuration(Bucket=bucket, Id=configuration_id)
    return config["InventoryConfiguration"]


def _optional_fields(config: InventoryConfigurationOutputTypeDef) -> list[str]:
    fields: list[str] = list(config.get("OptionalFields", []))
    # moto 5.2 answers a configuration of one optional field with that field's letters.
    if fields and all(len(field) == 1 for field in fields):
        fields = ["".join(fields)]
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"inventory {config['Id']}: no local column for {sorted(unknown)}")
    return [field for field in FIELDS if field in fields]


def _write(
    s3: S3Client,
    source: str,
    config: InventoryConfigurationOutputTypeDef,
    started: datetime,
    rows_per_file: int,
) -> Report:
    started = started.astimezone(UTC)
    destination = config["Destination"]["S3BucketDestination"]
    if destination["Format"] != "CSV":
        raise ValueError(f"inventory {config['Id']}: local reports are CSV only")
    target = destination["Bucket"].rsplit(":", 1)[-1]
    base = "/".join(part for part in (destination.get("Prefix"), source, config["Id"]) if part)
    folder = f"{base}/{started:%Y-%m-%dT%H-%MZ}"
    if _exists(s3, target, f"{folder}/manifest.json"):
        raise ReportExists(
            f"s3://{target}/{folder}/manifest.json exists: S3 writes one report of a"
            " configuration a day, and a second in the same minute would take its name"
        )
    fields = _optional_fields(config)
    rows = _rows(s3, source, config.get("Filter", {}).get("Prefix", ""), fields)
    files: list[dict[str, Any]] = []
    count = 0
    while chunk := list(itertools.islice(rows, rows_per_file)):
        body = _gzip_csv(chunk)
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        s3.put_object(Bucket=target, Key=key, Body=body)
        files.append({"key": key, "size": len(body), "MD5checksum": _md5(body)})
        count += len(chunk)
    symlinks = "".join(f"s3://{target}/{file['key']}\n" for file in files)
    hive = f"{base}/hive/dt={started:%Y-%m-%d-%H-%M}/symlink.txt"
    s3.put_object(Bucket=target, Key=hive, Body=symlinks.encode())
    manifest = json.dumps(
        {
            "sourceBucket": source,
            "destinationBucket": destination["Bucket"],
            "version": "2016-11-30",
            "creationTimestamp": str(int(started.timestamp() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": ", ".join(["Bucket", "Key", *fields]),
            "files": files,
        },
        indent=4,
    ).encode()
    s3.put_object(Bucket=target, Key=f"{folder}/manifest.checksum", Body=_md5(manifest).encode())
    s3.put_object(Bucket=target, Key=f"{folder}/manifest.json", Body=manifest)
    return Report(target, f"{folder}/manifest.json", tuple(f["key"] for f in files), count)


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return False
        raise
    return True


def _rows(s3: S3Client, bucket: str, prefix: str, fields: list[str]) -> Iterator[list[str]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for listed in page.get("Contents", []):
            key = quote_plus(listed["Key"], safe="/")
            yield [bucket, key, *(FIELDS[field](listed) for field in fields)]


def _gzip_csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode())


def _md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def _timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class ScheduledReports(threading.Thread):
    """S3's daily inventory, locally: every enabled configuration's report at start, then again
    every ``interval`` seconds. A failed report is logged and the next one is tried on time."""

    def __init__(
        self,
        endpoint: str,
        interval: float,
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(name="inventory-reports", daemon=True)
        self._s3 = boto3.client("s3", endpoint_url=endpoint)
        self._interval = interval
        # Not `_stop`: Thread.join calls a method of that name.
        self._stopping = stop
        self._clock = clock

    def run(self) -> None:
        while True:
            try:
                write_reports(self._s3, now=self._clock())
            except Exception:
                logger.exception("writing the inventory reports failed")
            if self._stopping.wait(self._interval):
                return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.inventory",
        description="Write an S3 Inventory report of every enabled configuration now.",
    )
    parser.add_argument("--endpoint", required=True, help="the local stack's AWS endpoint")
    parser.add_argument(
        "--rows-per-file", type=int, default=ROWS_PER_FILE, help="rows per data file"
    )
    args = parser.parse_args(argv)
    ((access_key, secret_key),) = LOCAL_CREDENTIALS.items()
    s3 = boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )
    for report in write_reports(s3, rows_per_file=args.rows_per_file):
        print(f"s3://{report.bucket}/{report.manifest_key} ({report.rows} objects)")


if __name__ == "__main__":
    main()
