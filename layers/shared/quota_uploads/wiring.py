"""The objects a Lambda process builds once, on first use, so cold starts pay only for what runs.

Endpoints come from the standard ``AWS_ENDPOINT_URL`` variables, which is how the local stack
points the real code at its embedded AWS.
"""

from __future__ import annotations

import gc
import os
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from quota_uploads.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from quota_uploads.ledger import Ledger
    from quota_uploads.presign import UploadSigner
    from quota_uploads.reconcile import Reconciler
    from quota_uploads.sigv4 import Credentials
    from quota_uploads.uploads import Uploads


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def dynamodb() -> DynamoDBClient:
    """The grant and event paths' calls by hand, all else through botocore."""
    from quota_uploads.dynamodb_fast import FastDynamoDB

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    # DYNAMODB_CLIENT=botocore is the escape hatch, and what in-process moto tests need.
    if not region or os.environ.get("DYNAMODB_CLIENT") == "botocore":
        return botocore_dynamodb()
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    fast = FastDynamoDB(
        region=region,
        endpoint_url=endpoint,
        credentials=current_credentials,
        botocore_client=botocore_dynamodb,
    )
    return cast("DynamoDBClient", fast)


@cache
def botocore_dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb")


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
    # The same variables botocore reads, so both signers agree on where S3 is.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    presigner = None
    if region and S3Presigner.supports(config.bucket_name, endpoint, config.s3_addressing_style):
        presigner = S3Presigner(
            bucket=config.bucket_name,
            region=region,
            endpoint_url=endpoint,
            credentials=current_credentials,
        )
    return UploadSigner(config.bucket_name, s3, presigner)


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
def reconciler() -> Reconciler:
    from quota_uploads.reconcile import Reconciler

    config = settings()
    return Reconciler(
        ledger(), s3(), config.bucket_name, config.reconcile_settle_seconds, uploads().sweep
    )


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
        reconciler,
    ):
        built.cache_clear()
