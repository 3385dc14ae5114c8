"""The objects a Lambda process builds once, on first use, so cold starts pay only for what runs.

Endpoints come from the standard ``AWS_ENDPOINT_URL`` variables, which is how the local stack
points the real code at its embedded AWS. Otherwise the hand-written S3 presigner and DynamoDB
client build regional hosts from ``AWS_URL_SUFFIX`` (the template's ``AWS::URLSuffix``), and
wherever botocore could resolve another endpoint, botocore does the work instead
(``_endpoints_left_to_botocore``); ``tests/unit/test_endpoints.py`` holds both to botocore.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from quota_uploads.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from quota_uploads.drift.work import Work, Worker
    from quota_uploads.ledger import Ledger
    from quota_uploads.presign import UploadSigner
    from quota_uploads.sigv4 import Credentials
    from quota_uploads.uploads import Uploads


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def dynamodb() -> DynamoDBClient:
    """The grant and event paths' calls by hand, all else through botocore."""
    from quota_uploads.dynamodb_fast import FastDynamoDB

    region = _region()
    endpoint = _endpoint_url("DYNAMODB")
    # DYNAMODB_CLIENT=botocore is the escape hatch, and what in-process moto tests need.
    if (
        not region
        or os.environ.get("DYNAMODB_CLIENT") == "botocore"
        or _endpoints_left_to_botocore()
        or _endpoint_discovery_possible()
        or _account_endpoint_possible(endpoint)
    ):
        return botocore_dynamodb()
    fast = FastDynamoDB(
        region=region,
        endpoint_url=endpoint,
        dns_suffix=_url_suffix(),
        credentials=current_credentials,
        botocore_client=botocore_dynamodb,
    )
    return cast("DynamoDBClient", fast)


@cache
def botocore_dynamodb() -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    # botocore waits a minute per connect and read by default; the API function has ten
    # seconds, and a DynamoDB answer takes milliseconds: fail (and retry) well inside that.
    bounded = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard"})
    return boto3.client("dynamodb", config=bounded)


def end_init() -> None:
    """Freeze everything built so far out of the collector's reach, then let it run again.

    Handlers turn the collector off before their imports: what init builds lives as long as the
    process, so collecting while building it is wasted (about a tenth of cold init), and so is
    rescanning it in every later full collection, which a big S3 event batch sets off (a third
    of its parsing time). Figures from ``make bench``.
    """
    gc.freeze()
    gc.enable()


@cache
def s3() -> S3Client:
    import boto3
    from botocore.config import Config

    # boto3 presigns SigV2 in us-east-1 by default, which binds no Content-Length.
    addressing: Any = {"addressing_style": settings().s3_addressing_style}
    client: S3Client = boto3.client("s3", config=Config(signature_version="s3v4", s3=addressing))
    return client


@cache
def sns() -> SNSClient:
    import boto3

    return boto3.client("sns")


@cache
def ledger() -> Ledger:
    from quota_uploads.ledger import Ledger

    return Ledger(dynamodb(), settings())


@cache
def signer() -> UploadSigner:
    from quota_uploads.presign import UploadSigner
    from quota_uploads.sigv4 import S3Presigner

    config = settings()
    region = _region()
    endpoint = _endpoint_url("S3")
    presigner = None
    if (
        region
        and not _endpoints_left_to_botocore()
        and S3Presigner.supports(config.bucket_name, endpoint, config.s3_addressing_style)
    ):
        presigner = S3Presigner(
            bucket=config.bucket_name,
            region=region,
            endpoint_url=endpoint,
            dns_suffix=_url_suffix(),
            us_east_1_regional=os.environ.get("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT") == "regional",
            credentials=current_credentials,
        )
    return UploadSigner(config.bucket_name, s3, presigner)


def _region() -> str | None:
    # As botocore reads it, so the hand-written clients sign for botocore's region: it takes
    # none from AWS_REGION (Lambda sets both).
    return os.environ.get("AWS_DEFAULT_REGION") or None


def _endpoint_url(service_id: str) -> str | None:
    env = os.environ
    return env.get(f"AWS_ENDPOINT_URL_{service_id}") or env.get("AWS_ENDPOINT_URL") or None


def _url_suffix() -> str:
    return os.environ.get("AWS_URL_SUFFIX") or "amazonaws.com"


def _switched_on(name: str) -> bool:
    # botocore reads only "true" (any case) as on; anything but unset or "false" steps aside,
    # which is right whichever way botocore reads it.
    return os.environ.get(name, "").lower() not in ("", "false")


def _endpoints_left_to_botocore() -> bool:
    """Whether botocore could pick an endpoint other than the hand-written clients would.

    They know regional hosts (S3's global one in us-east-1 as well) and custom endpoints. FIPS
    and dual-stack hosts, ignored ``AWS_ENDPOINT_URL`` variables and replaced endpoint data
    (``AWS_DATA_PATH``) are botocore's; so is a value of AWS_S3_US_EAST_1_REGIONAL_ENDPOINT it
    refuses (for every client, DynamoDB's too); and so is anything the shared config or
    credentials file (botocore merges both) says about endpoints: found by name rather than
    parsed, so a mention, even in a comment, is enough. Lambda has neither file, so there this
    costs two failed opens.
    """
    us_east_1 = os.environ.get("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "legacy")
    if (
        os.environ.get("AWS_DATA_PATH")
        or us_east_1 not in ("legacy", "regional")
        or any(
            _switched_on(name)
            for name in (
                "AWS_USE_FIPS_ENDPOINT",
                "AWS_USE_DUALSTACK_ENDPOINT",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            )
        )
    ):
        return True
    for variable, default in (
        ("AWS_CONFIG_FILE", "~/.aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    ):
        try:
            with open(os.path.expanduser(os.environ.get(variable, default)), "rb") as file:
                text = file.read().lower()
        except OSError:
            continue
        # Each setting that can move these clients has "endpoint" in its name, but for the
        # ``services`` sections of per-service endpoint URLs and ``data_path``.
        if any(name in text for name in (b"endpoint", b"services", b"data_path")):
            return True
    return False


def _endpoint_discovery_possible() -> bool:
    # DynamoDB's operations allow discovery; botocore discovers only when told to.
    return os.environ.get("AWS_ENDPOINT_DISCOVERY_ENABLED", "auto").lower() not in (
        "auto",
        "false",
    )


def _account_endpoint_possible(endpoint: str | None) -> bool:
    """Whether botocore might send DynamoDB calls to ``<account>.ddb.<region>.<suffix>``.

    By default it does so whenever the credentials carry an account id: from the environment,
    the chain's first source, that is ``AWS_ACCOUNT_ID`` (Lambda sets none); from any other
    source only botocore can tell. A custom endpoint overrides it.
    """
    mode = os.environ.get("AWS_ACCOUNT_ID_ENDPOINT_MODE", "preferred").lower()
    if mode == "disabled":
        return False
    if mode != "preferred":
        # "required", or a value botocore refuses: its answer either way.
        return True
    if endpoint:
        return False
    return not os.environ.get("AWS_ACCESS_KEY_ID") or bool(os.environ.get("AWS_ACCOUNT_ID"))


@cache
def _credential_provider() -> Any:
    import botocore.session

    return botocore.session.get_session().get_credentials()


def current_credentials() -> Credentials:
    """The process's AWS credentials as they are now (refreshed when they rotate)."""
    from quota_uploads.sigv4 import Credentials

    # Lambda hands its role's credentials over in these variables, which botocore's chain reads
    # first; taking them here keeps botocore's ~70 ms import off a grant's cold start.
    env = os.environ
    if (
        env.get("AWS_ACCESS_KEY_ID")
        and env.get("AWS_SECRET_ACCESS_KEY")
        and "AWS_CREDENTIAL_EXPIRATION" not in env
    ):
        token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
        return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], token)
    frozen = _credential_provider().get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


@cache
def uploads() -> Uploads:
    from quota_uploads.uploads import Uploads

    return Uploads(settings(), ledger(), s3, signer())


@cache
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs")


def send_work(messages: Sequence[Work]) -> None:
    """Queues drift repair's work, ten messages to a request."""
    url = settings().audit_queue_url
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        response = sqs().send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "MessageBody": message.model_dump_json()}
                for index, message in enumerate(chunk)
            ],
        )
        if response.get("Failed"):
            raise RuntimeError(f"could not queue drift repair work: {response['Failed']}")


@cache
def background_ledger() -> Ledger:
    """The ledger of the functions off the request path, which call it from threads too:
    botocore's client throughout."""
    from quota_uploads.ledger import Ledger

    return Ledger(botocore_dynamodb(), settings())


@cache
def drift_worker() -> Worker:
    from quota_uploads.drift.check import UserCheck
    from quota_uploads.drift.work import Worker

    config = settings()
    check = UserCheck(
        background_ledger(), s3(), config.bucket_name, config.reconcile_settle_seconds
    )
    return Worker(background_ledger(), s3(), check, send_work, config.bucket_name)


def reset() -> None:
    """Forget everything built, so the next use reads the environment again (tests, local stack)."""
    for built in (
        settings,
        dynamodb,
        botocore_dynamodb,
        s3,
        sns,
        ledger,
        signer,
        _credential_provider,
        uploads,
        sqs,
        background_ledger,
        drift_worker,
    ):
        built.cache_clear()
