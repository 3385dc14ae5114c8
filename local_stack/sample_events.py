"""The sample events under events/, made from what ``sam local generate-event`` prints.

Each event starts as the SAM CLI generates it, with its fields, ids and fixed values. It then
gets what this service's own sources put there: a route of the template with the claims API
Gateway's JWT authorizer passes on (every claim a string, an array as ``[a b]``, as
``cognito.claim_string`` has them); an S3 notification in the SQS message the bucket sends;
drift repair's work messages, made by its own models; the stream records of a usage item.
Resources are named as the local stack names them, so an event names what exists there.
events/README.md says what each event answers.

``python -m local_stack.sample_events`` (``make events``, which installs the SAM CLI first)
writes them all again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from local_stack.cognito import claim_string
from local_stack.functions import ROOT, Route
from local_stack.provision import physical_ids
from local_stack.stack import REGION
from local_stack.template import STACK_NAME, Resolver, load_template
from quota_uploads.drift.work import DueChecks, InventorySlice, UserPages
from quota_uploads.keys import object_key

EVENTS = ROOT / "events"
SAM = ROOT / ".venv-sam" / "bin" / "sam"

# The caller of every API event: a Cognito user's sub, as the pool issues them.
SUB = "3f1c2a9e-7b4d-4c55-9e0a-5d2b8c6f1a01"
# An upload id carrying no terms: no reservation or upload of a fresh stack has it.
UPLOAD_ID = "0123456789abcdef0123456789abcdef"
KEY = object_key(SUB, UPLOAD_ID, "holiday.jpg")
MULTIPART_KEY = object_key(SUB, "fedcba9876543210fedcba9876543210", "holiday.mp4")
SIZE = 1048576
# An inventory report's folder and when its listing began (S3 names the folder after it).
REPORT_FOLDER = "2026-11-24T01-00Z"
REPORT_CREATED = 1795482000
# One of the ledger's shards of users (ledger.table.EXPIRY_SHARDS).
SHARD = 5


@dataclass(frozen=True)
class HttpSample:
    name: str
    method: str
    route: str
    raw_path: str
    body: Any = None
    query: Mapping[str, str] | None = None
    groups: Sequence[str] = ()


# Every route of ApiFunction, each once.
HTTP_SAMPLES = (
    HttpSample(
        "http_post_uploads",
        "POST",
        "/uploads",
        "/uploads",
        {"filename": "holiday.jpg", "size": SIZE, "contentType": "image/jpeg"},
    ),
    HttpSample("http_get_usage", "GET", "/usage", "/usage"),
    HttpSample("http_get_files", "GET", "/files", "/files", query={"limit": "10"}),
    # The key travels as one URL-encoded path segment (encodeURIComponent).
    HttpSample("http_get_file", "GET", "/files/{key+}", f"/files/{quote(KEY, safe='')}"),
    HttpSample("http_delete_file", "DELETE", "/files/{key+}", f"/files/{quote(KEY, safe='')}"),
    HttpSample(
        "http_put_quota",
        "PUT",
        "/admin/users/{userId}/quota",
        f"/admin/users/{SUB}/quota",
        {"quotaBytes": 2147483648},
        groups=("admins",),
    ),
    HttpSample(
        "http_post_upload_parts",
        "POST",
        "/uploads/{uploadId}/parts",
        f"/uploads/{UPLOAD_ID}/parts",
        {"partNumbers": [1]},
    ),
    HttpSample(
        "http_get_upload_parts", "GET", "/uploads/{uploadId}/parts", f"/uploads/{UPLOAD_ID}/parts"
    ),
    HttpSample(
        "http_post_upload_complete",
        "POST",
        "/uploads/{uploadId}/complete",
        f"/uploads/{UPLOAD_ID}/complete",
        {"parts": [{"partNumber": 1, "etag": "0123456789abcdef0123456789abcdef"}]},
    ),
    HttpSample("http_delete_upload", "DELETE", "/uploads/{uploadId}", f"/uploads/{UPLOAD_ID}"),
)


def generated(*command: str) -> dict[str, Any]:
    """An event as ``sam local generate-event <command>`` prints it."""
    printed = subprocess.run(  # noqa: S603 - the project's own SAM CLI
        [str(SAM), "local", "generate-event", *command],
        capture_output=True,
        check=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    ).stdout
    event: dict[str, Any] = json.loads(printed)
    return event


def id_token_claims(groups: Sequence[str] = ()) -> dict[str, str]:
    """A Cognito ID token's claims for ``SUB``, as API Gateway hands them to the function."""
    claims: dict[str, Any] = {
        "sub": SUB,
        "email_verified": True,
        "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Example",
        "cognito:username": SUB,
        "origin_jti": "6f4e2f0c-8d5b-4c8e-9c57-2f5b1c0f8a11",
        "aud": "4example1client2id3",
        "event_id": "1b0c9a7e-2d3f-4e5a-8b6c-7d8e9f0a1b2c",
        "token_use": "id",
        "auth_time": 1795510000,
        "exp": 1795513600,
        "iat": 1795510000,
        "jti": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        "email": "alice@example.com",
    }
    if groups:
        claims["cognito:groups"] = list(groups)
    return {name: claim_string(value) for name, value in claims.items()}


def http_event(sample: HttpSample) -> dict[str, Any]:
    """An HTTP API payload-2.0 event as API Gateway sends it for a request on ``sample.route``."""
    event = generated(
        "apigateway",
        "http-api-proxy",
        "--method",
        sample.method,
        "--path",
        sample.raw_path[1:],
        "--dns-suffix",
        f"{REGION}.amazonaws.com",
    )
    context = event["requestContext"]
    route_key = f"{sample.method} {sample.route}"
    event["routeKey"] = context["routeKey"] = route_key
    body = None if sample.body is None else json.dumps(sample.body)
    headers = {
        "accept": "application/json",
        # The ID token the authorizer checked (its claims are below).
        "authorization": "Bearer eyJraWQiOi...",
        "host": context["domainName"],
        "user-agent": context["http"]["userAgent"],
        "x-forwarded-for": context["http"]["sourceIp"].split("/")[0],
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers |= {"content-length": str(len(body)), "content-type": "application/json"}
    event["headers"] = dict(sorted(headers.items()))
    event["rawQueryString"] = urlencode(sample.query or {})
    parameters = Route(sample.method, sample.route, "ApiFunction").match(
        sample.method, sample.raw_path
    )
    if parameters is None:
        raise ValueError(f"{sample.raw_path} is not a path of {route_key}")
    # Set in SAM's place, or dropped where API Gateway sends none; API Gateway decodes path
    # parameters and leaves rawPath as it came.
    present = {
        "queryStringParameters": dict(sample.query or {}),
        "pathParameters": {name: unquote(value) for name, value in parameters.items()},
        "body": body,
    }
    for name, value in present.items():
        if value:
            event[name] = value
        else:
            del event[name]
    # What a client of this API does not send, and mutual TLS, which the API does not use.
    del event["cookies"], event["stageVariables"], context["authentication"]
    context["authorizer"] = {"jwt": {"claims": id_token_claims(sample.groups), "scopes": None}}
    event["isBase64Encoded"] = False
    return event


class Samples:
    """The non-HTTP events, naming the local stack's resources."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.names = physical_ids(template, STACK_NAME)
        self.resolver = Resolver(template, self.names, region=REGION)
        (inventory,) = template["Resources"]["UploadsBucket"]["Properties"][
            "InventoryConfigurations"
        ]
        # <prefix>/<source bucket>/<configuration id>/..., as S3 lays a report out.
        self.report = f"{inventory['Destination']['Prefix']}/{self.bucket}/{inventory['Id']}"
        self.run = f"{inventory['Id']}/{REPORT_FOLDER}"

    @property
    def bucket(self) -> str:
        return self.names["UploadsBucket"]

    def sqs(self, queue: str, body: str) -> dict[str, Any]:
        """One message of ``queue`` as Lambda's SQS event source hands it over."""
        event = generated(
            "sqs", "receive-message", "--queue-name", self.names[queue], "--region", REGION
        )
        (record,) = event["Records"]
        record["body"] = body
        record["md5OfBody"] = hashlib.md5(body.encode()).hexdigest()  # noqa: S324 - SQS's digest
        return event

    def s3(self, kind: str, bucket: str, key: str, time: str, **fields: Any) -> str:
        """An S3 event notification, as the bucket sends it to a queue."""
        notification = generated("s3", kind, "--bucket", bucket, "--key", key, "--region", REGION)
        (record,) = notification["Records"]
        record["eventTime"] = time
        if "eventName" in fields:
            record["eventName"] = fields.pop("eventName")
        record["s3"]["object"].update(fields)
        return json.dumps(notification)

    def all(self) -> dict[str, dict[str, Any]]:
        reports = self.names["ReportsBucket"]
        test_event = {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-11-24T09:59:00.000Z",
            "Bucket": self.bucket,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
        return {
            "sqs_s3_object_created": self.sqs(
                "UsageEventsQueue",
                self.s3("put", self.bucket, KEY, "2026-11-24T10:00:00.000Z", size=SIZE),
            ),
            "sqs_s3_object_removed": self.sqs(
                "UsageEventsQueue",
                # After the creation's: events of a key apply in sequencer order.
                self.s3(
                    "delete",
                    self.bucket,
                    KEY,
                    "2026-11-24T10:05:00.000Z",
                    sequencer="0A1B2C3D4E5F678902",
                ),
            ),
            "sqs_s3_multipart_complete": self.sqs(
                "UsageEventsQueue",
                self.s3(
                    "put",
                    self.bucket,
                    MULTIPART_KEY,
                    "2026-11-24T10:10:00.000Z",
                    eventName="ObjectCreated:CompleteMultipartUpload",
                    size=200 * SIZE,
                    # A multipart object's ETag: the digest of its parts' digests, and their count.
                    eTag="0123456789abcdef0123456789abcdef-4",
                    sequencer="0A1B2C3D4E5F678903",
                ),
            ),
            "sqs_s3_test_event": self.sqs("UsageEventsQueue", json.dumps(test_event)),
            "schedule": generated("cloudwatch", "scheduled-event", "--region", REGION),
            "dynamodb_stream_usage": self.stream(),
            "sqs_audit_due_checks": self.sqs(
                "AuditQueue", DueChecks(shard=SHARD, until=1795514400).model_dump_json()
            ),
            "sqs_inventory_manifest": self.sqs(
                "AuditQueue",
                self.s3(
                    "put",
                    reports,
                    f"{self.report}/{REPORT_FOLDER}/manifest.json",
                    "2026-11-24T03:12:45.000Z",
                    size=512,
                ),
            ),
            "sqs_audit_inventory_slice": self.sqs(
                "AuditQueue",
                InventorySlice(
                    run=self.run,
                    bucket=reports,
                    key=f"{self.report}/data/5d0c7a34-8a8e-4c1e-9f0b-3b2c1d0e9f8a.csv.gz",
                    file=0,
                    created=REPORT_CREATED,
                    columns=("Bucket", "Key", "Size", "LastModifiedDate", "ETag"),
                ).model_dump_json(),
            ),
            "sqs_audit_user_pages": self.sqs(
                "AuditQueue",
                UserPages(run=self.run, shard=SHARD, created=REPORT_CREATED).model_dump_json(),
            ),
        }

    def stream(self) -> dict[str, Any]:
        """A usage item made by a grant of ``SIZE`` bytes, then changed by their arrival."""
        event = generated(
            "dynamodb", "update", "--table", self.names["LedgerTable"], "--region", REGION
        )
        inserted, modified = event["Records"][:2]  # the third removes an item: usage items stay
        keys = {"pk": {"S": f"USER#{SUB}"}, "sk": {"S": "USAGE"}}

        def usage(used: int, objects: int) -> dict[str, Any]:
            return {
                **keys,
                "usedBytes": {"N": str(used)},
                "committedBytes": {"N": str(SIZE)},
                "objectCount": {"N": str(objects)},
                "expiryShard": {"S": str(SHARD)},
            }

        inserted["dynamodb"].update(Keys=keys, NewImage=usage(0, 0))
        modified["dynamodb"].update(Keys=keys, OldImage=usage(0, 0), NewImage=usage(SIZE, 1))
        event["Records"] = [inserted, modified]
        return event


def write_all(directory: Path = EVENTS) -> list[Path]:
    events = {sample.name: http_event(sample) for sample in HTTP_SAMPLES}
    events |= Samples(load_template()).all()
    written = []
    for name, event in sorted(events.items()):
        path = directory / f"{name}.json"
        path.write_text(json.dumps(event, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path.relative_to(ROOT))
