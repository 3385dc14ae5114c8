"""S3 Inventory reports as the local stack writes them, read back: the manifest's fields and
checksum, the data files' rows against the bucket's listing (keys URL-encoded as S3 encodes
them), several files, the manifest last, and the audit's own reader agreeing."""

from __future__ import annotations

import copy
import csv
import gzip
import hashlib
import io
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import boto3
import pytest

from local_stack.inventory import (
    ReportExists,
    ScheduledReports,
    configuration_request,
    main,
    write_report,
    write_reports,
)
from local_stack.provision import physical_ids
from local_stack.template import Resolver
from quota_uploads.drift.inventory import parse_manifest, read_rows
from tests.conftest import BUCKET
from tests.support.dynamodb import running_moto
from tests.support.local_stack_process import eventually

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOW = datetime(2026, 11, 24, 10, 15, 42, 123000, tzinfo=UTC)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def configuration(template: dict[str, Any]) -> dict[str, Any]:
    """The template's inventory of the uploads bucket, resolved with local names."""
    resolver = Resolver(template, physical_ids(template, "local"))
    properties = resolver.resolve(template["Resources"]["UploadsBucket"]["Properties"])
    (config,) = properties["InventoryConfigurations"]
    return dict(config)


@pytest.fixture
def reports(s3: S3Client, configuration: dict[str, Any]) -> str:
    """The destination bucket, with the template's configuration on the uploads bucket."""
    destination = configuration["Destination"]["BucketArn"].rsplit(":", 1)[1]
    s3.create_bucket(Bucket=destination)
    put_configuration(s3, configuration)
    return str(destination)


def put_configuration(s3: S3Client, config: dict[str, Any]) -> None:
    s3.put_bucket_inventory_configuration(
        Bucket=BUCKET, Id=config["Id"], InventoryConfiguration=configuration_request(config)
    )


def store(s3: S3Client, *keys: str) -> None:
    for number, key in enumerate(keys):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * (number + 1))


def body(s3: S3Client, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def data_lines(s3: S3Client, bucket: str, key: str) -> list[str]:
    return gzip.decompress(body(s3, bucket, key)).decode().splitlines()


def test_the_templates_configuration_is_stored_as_put(
    s3: S3Client, reports: str, configuration: dict[str, Any]
) -> None:
    stored = s3.get_bucket_inventory_configuration(Bucket=BUCKET, Id="users-daily")
    config = stored["InventoryConfiguration"]
    assert config["Destination"]["S3BucketDestination"] == {
        "Bucket": f"arn:aws:s3:::{reports}",
        "Format": "CSV",
        "Prefix": "inventory",
    }
    assert config["Filter"] == {"Prefix": "users/"}
    assert config["OptionalFields"] == ["Size", "LastModifiedDate", "ETag"]
    assert config["Schedule"] == {"Frequency": "Daily"}
    assert config["IsEnabled"] is True


def test_a_report_lists_the_prefix_in_s3s_format(s3: S3Client, reports: str) -> None:
    keys = ["users/alice/a b.txt", "users/bob/ü+x.bin", "users/carol/100%.csv", "users/d/x/y"]
    store(s3, *keys, "outside/z.bin")
    report = write_report(s3, BUCKET, "users-daily", now=NOW)

    folder = f"inventory/{BUCKET}/users-daily/2026-11-24T10-15Z"
    assert report.manifest_key == f"{folder}/manifest.json"
    manifest_body = body(s3, reports, report.manifest_key)
    manifest = json.loads(manifest_body)
    assert {k: v for k, v in manifest.items() if k != "files"} == {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{reports}",
        "version": "2016-11-30",
        "creationTimestamp": "1795515342123",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
    }
    checksum = body(s3, reports, f"{folder}/manifest.checksum").decode()
    assert checksum == hashlib.md5(manifest_body).hexdigest()

    (file,) = manifest["files"]
    assert re.fullmatch(
        rf"inventory/{BUCKET}/users-daily/data/[0-9a-f-]{{36}}\.csv\.gz", file["key"]
    )
    data = body(s3, reports, file["key"])
    assert (file["size"], file["MD5checksum"]) == (len(data), hashlib.md5(data).hexdigest())

    lines = gzip.decompress(data).decode().splitlines()
    rows = list(csv.reader(lines))
    # Every field quoted, keys encoded as S3's url encoding does (space +, slash kept).
    assert [line.count('"') for line in lines] == [10] * 4
    assert [row[1] for row in rows] == [
        "users/alice/a+b.txt",
        "users/bob/%C3%BC%2Bx.bin",
        "users/carol/100%25.csv",
        "users/d/x/y",
    ]
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="users/")["Contents"]
    assert [row[0] for row in rows] == [BUCKET] * 4
    assert [unquote_plus(row[1]) for row in rows] == [o["Key"] for o in listing] == sorted(keys)
    assert [int(row[2]) for row in rows] == [o["Size"] for o in listing]
    assert [row[4] for row in rows] == [o["ETag"].strip('"') for o in listing]
    for row, listed in zip(rows, listing, strict=True):
        assert TIMESTAMP.fullmatch(row[3])
        written = datetime.fromisoformat(row[3].replace("Z", "+00:00"))
        assert abs(written - listed["LastModified"]) < timedelta(milliseconds=1)


def test_a_large_listing_spans_several_files_in_listing_order(s3: S3Client, reports: str) -> None:
    keys = [f"users/u{n}/f.bin" for n in range(5)]
    store(s3, *keys)
    report = write_report(s3, BUCKET, "users-daily", now=NOW, rows_per_file=2)
    assert report.rows == 5
    manifest = json.loads(body(s3, reports, report.manifest_key))
    assert [f["key"] for f in manifest["files"]] == list(report.data_keys)
    per_file = [data_lines(s3, reports, key) for key in report.data_keys]
    assert [len(lines) for lines in per_file] == [2, 2, 1]
    rows = [row for lines in per_file for row in csv.reader(lines)]
    assert [row[1] for row in rows] == keys


def test_the_manifest_is_written_after_everything_it_lists(s3: S3Client, reports: str) -> None:
    store(s3, "users/a/1", "users/a/2", "users/a/3")
    written: list[str] = []
    s3.meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: written.append(params["url_path"])
    )
    report = write_report(s3, BUCKET, "users-daily", now=NOW, rows_per_file=1)
    assert len(written) == 3 + 3  # three data files, the hive symlink, checksum, manifest
    assert written[-1].endswith(report.manifest_key)
    assert written[-2].endswith("manifest.checksum")
    assert all("/data/" in path for path in written[:3])


def test_the_hive_symlink_lists_the_data_files(s3: S3Client, reports: str) -> None:
    store(s3, "users/a/1", "users/a/2")
    report = write_report(s3, BUCKET, "users-daily", now=NOW, rows_per_file=1)
    symlink = f"inventory/{BUCKET}/users-daily/hive/dt=2026-11-24-10-15/symlink.txt"
    lines = body(s3, reports, symlink).decode().splitlines()
    assert lines == [f"s3://{reports}/{key}" for key in report.data_keys]


def test_an_empty_listing_gives_a_manifest_without_files(s3: S3Client, reports: str) -> None:
    report = write_report(s3, BUCKET, "users-daily", now=NOW)
    assert (report.rows, report.data_keys) == (0, ())
    assert json.loads(body(s3, reports, report.manifest_key))["files"] == []


def test_a_second_report_in_the_same_minute_is_refused(s3: S3Client, reports: str) -> None:
    write_report(s3, BUCKET, "users-daily", now=NOW)
    with pytest.raises(ReportExists):
        write_report(s3, BUCKET, "users-daily", now=NOW + timedelta(seconds=10))
    later = write_report(s3, BUCKET, "users-daily", now=NOW + timedelta(minutes=1))
    assert "2026-11-24T10-16Z" in later.manifest_key


def test_the_audits_reader_reads_the_report(s3: S3Client, reports: str) -> None:
    store(s3, "users/alice/a b.txt", "users/bob/ü+x.bin", "users/bob/c")
    report = write_report(s3, BUCKET, "users-daily", now=NOW, rows_per_file=2)
    manifest = parse_manifest(body(s3, reports, report.manifest_key))
    assert (manifest.source_bucket, manifest.destination_bucket) == (BUCKET, reports)
    assert manifest.created == int(NOW.timestamp())
    read = [
        (row.key, row.size)
        for file in manifest.files
        for row in read_rows(io.BytesIO(body(s3, reports, file.key)), manifest.schema)
    ]
    listing = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert read == [(o["Key"], o["Size"]) for o in listing]


def test_one_optional_field_reads_back_whole(
    s3: S3Client, reports: str, configuration: dict[str, Any]
) -> None:
    # moto answers a lone field letter by letter; the report still has its one column.
    put_configuration(s3, {**configuration, "Id": "sizes", "OptionalFields": ["Size"]})
    report = write_report(s3, BUCKET, "sizes", now=NOW)
    assert json.loads(body(s3, reports, report.manifest_key))["fileSchema"] == "Bucket, Key, Size"


def test_every_enabled_configuration_is_reported(
    s3: S3Client, reports: str, configuration: dict[str, Any]
) -> None:
    put_configuration(s3, {**configuration, "Id": "off", "Enabled": False})
    assert [r.manifest_key.split("/")[2] for r in write_reports(s3, now=NOW)] == ["users-daily"]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"Destination": {"Format": "ORC"}}, "a format other than CSV"),
        ({"IncludedObjectVersions": "All"}, "object versions"),
        ({"ScheduleFrequency": "Weekly"}, "a schedule other than Daily"),
        ({"OptionalFields": ["Size", "EncryptionStatus"]}, "EncryptionStatus"),
        ({"TableConfiguration": {}}, "TableConfiguration"),
    ],
)
def test_configurations_local_reports_cannot_honour_are_refused(
    configuration: dict[str, Any], change: dict[str, Any], refusal: str
) -> None:
    config = copy.deepcopy(configuration)
    for name, value in change.items():
        if isinstance(value, dict) and name in config:
            config[name].update(value)
        else:
            config[name] = value
    with pytest.raises(ValueError, match=refusal):
        configuration_request(config)


@pytest.fixture
def moto_with_configuration(configuration: dict[str, Any]) -> Iterator[S3Client]:
    """A moto server (the scheduler and the command reach S3 over HTTP) with the buckets."""
    with running_moto() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=configuration["Destination"]["BucketArn"].rsplit(":", 1)[1])
        put_configuration(s3, configuration)
        s3.put_object(Bucket=BUCKET, Key="users/alice/f.bin", Body=b"12345")
        yield s3


def manifests(s3: S3Client, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="inventory/").get("Contents", [])
    return [o["Key"] for o in listed if o["Key"].endswith("manifest.json")]


def test_scheduled_reports_come_at_start_then_every_interval(
    moto_with_configuration: S3Client, configuration: dict[str, Any]
) -> None:
    s3 = moto_with_configuration
    destination = configuration["Destination"]["BucketArn"].rsplit(":", 1)[1]
    days = iter(NOW + timedelta(days=n) for n in range(100))
    stop = threading.Event()
    endpoint = s3.meta.endpoint_url
    scheduled = ScheduledReports(endpoint, interval=0.05, stop=stop, clock=lambda: next(days))
    scheduled.start()
    try:
        written = eventually(lambda: manifests(s3, destination), lambda found: len(found) >= 2)
    finally:
        stop.set()
        scheduled.join(timeout=5)
    assert not scheduled.is_alive()
    assert [key.split("/")[3] for key in written[:2]] == ["2026-11-24T10-15Z", "2026-11-25T10-15Z"]


def test_the_command_writes_a_report_now(
    moto_with_configuration: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--endpoint", moto_with_configuration.meta.endpoint_url])
    printed = capsys.readouterr().out
    assert re.fullmatch(
        r"s3://\S+-reportsbucket/inventory/uploads-test/users-daily/\S+/manifest\.json"
        r" \(1 objects\)\n",
        printed,
    )
