"""Where the hand-written clients send requests, against where botocore would send them.

For each partition and each endpoint setting, either the hand-written S3 URL and DynamoDB
endpoint are botocore's for the same environment, or wiring hands the work to botocore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from quota_uploads import wiring
from quota_uploads.dynamodb_fast import FastDynamoDB
from quota_uploads.presign import UploadSigner
from quota_uploads.sigv4 import S3Presigner

NOW = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)
# Region and the template's AWS::URLSuffix there, one region or two per partition.
PARTITIONS = [
    ("us-east-1", "amazonaws.com"),
    ("eu-west-1", "amazonaws.com"),
    ("cn-north-1", "amazonaws.com.cn"),
    ("cn-northwest-1", "amazonaws.com.cn"),
    ("us-gov-west-1", "amazonaws.com"),
    ("us-iso-east-1", "c2s.ic.gov"),
    ("eusc-de-east-1", "amazonaws.eu"),
]
# Each setting, and whether the hand-written S3 presigner and DynamoDB client still serve.
SETTINGS: dict[str, tuple[dict[str, str], bool, bool]] = {
    "none": ({}, True, True),
    "S3 us-east-1 regional": ({"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"}, True, True),
    "S3 us-east-1 legacy": ({"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "legacy"}, True, True),
    "S3 us-east-1 invalid": ({"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "Regional"}, False, False),
    "FIPS": ({"AWS_USE_FIPS_ENDPOINT": "true"}, False, False),
    "FIPS off": ({"AWS_USE_FIPS_ENDPOINT": "false"}, True, True),
    "dual-stack": ({"AWS_USE_DUALSTACK_ENDPOINT": "TRUE"}, False, False),
    "FIPS and dual-stack": (
        {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
        False,
        False,
    ),
    "configured endpoints ignored": ({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, False, False),
    "account id": ({"AWS_ACCOUNT_ID": "123456789012"}, True, False),
    "account id, account endpoints off": (
        {"AWS_ACCOUNT_ID": "123456789012", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"},
        True,
        True,
    ),
    "account endpoints required": ({"AWS_ACCOUNT_ID_ENDPOINT_MODE": "required"}, True, False),
    "endpoint discovery": ({"AWS_ENDPOINT_DISCOVERY_ENABLED": "true"}, True, False),
}
# Everything botocore reads that moves an endpoint, cleared before each case sets its own.
ENDPOINT_VARIABLES = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DATA_PATH",
    "AWS_CREDENTIAL_EXPIRATION",
    "DYNAMODB_CLIENT",
    "S3_ADDRESSING_STYLE",
    *(name for variables, _, _ in SETTINGS.values() for name in variables),
]


class _Sent(Exception):
    """Stops botocore's request at the point it would go on the wire."""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    # boto3's default session keeps the credentials it first found: each case reads its own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))

    class _Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return NOW

    monkeypatch.setattr("quota_uploads.sigv4.datetime", _Frozen)
    wiring.reset()
    yield
    wiring.reset()


def _environment(monkeypatch: pytest.MonkeyPatch, region: str, variables: dict[str, str]) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_REGION", region)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    wiring.reset()


def botocore_endpoint() -> str:
    """Where botocore's DynamoDB client, as wiring builds it, sends a ``GetItem``."""
    client: Any = wiring.botocore_dynamodb()
    sent: list[str] = []

    def stop(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise _Sent

    client.meta.events.register_first("before-send.dynamodb.GetItem", stop)
    with pytest.raises(_Sent):
        client.get_item(TableName=wiring.settings().table_name, Key={"pk": {"S": "USER#a"}})
    parts = urlsplit(sent[0])
    return f"{parts.scheme}://{parts.netloc}"


def outcome(call: Callable[[], Any]) -> Any:
    """What a call gives a caller: its result, or the class of its error."""
    try:
        return call()
    except Exception as error:
        return type(error)


def assert_dynamodb_is_botocores(hand_written: bool) -> None:
    if hand_written:
        client = wiring.dynamodb()
        assert isinstance(client, FastDynamoDB)
        assert client.endpoint_url == botocore_endpoint()
    else:
        # botocore's client, or the error botocore raises for the settings.
        assert outcome(wiring.dynamodb) is outcome(wiring.botocore_dynamodb)


def assert_s3_urls_are_botocores(hand_written: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    signed: list[str] = []
    presign_put = S3Presigner.presign_put

    def recorded(self: S3Presigner, key: str, **kwargs: Any) -> str:
        signed.append(key)
        return presign_put(self, key, **kwargs)

    monkeypatch.setattr(S3Presigner, "presign_put", recorded)

    def put(signer: Callable[[], UploadSigner]) -> Callable[[], str]:
        return lambda: (
            signer()
            .put(
                key="USER#a/f.bin",
                size=10,
                content_type="image/png",
                checksum_sha256=None,
                expires_in=900,
            )
            .url
        )

    ours = outcome(put(wiring.signer))
    assert bool(signed) is hand_written
    assert ours == outcome(
        put(lambda: UploadSigner(wiring.settings().bucket_name, wiring.s3, None))
    )


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("region", "suffix"), PARTITIONS)
def test_hand_written_endpoints_are_botocores_or_botocore_serves(
    region: str, suffix: str, setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables, s3_hand_written, dynamodb_hand_written = SETTINGS[setting]
    _environment(monkeypatch, region, {"AWS_URL_SUFFIX": suffix, **variables})

    assert_s3_urls_are_botocores(s3_hand_written, monkeypatch)
    assert_dynamodb_is_botocores(dynamodb_hand_written)


def test_without_the_suffix_hosts_are_the_commercial_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _environment(monkeypatch, "eu-central-1", {})

    assert_s3_urls_are_botocores(True, monkeypatch)
    assert_dynamodb_is_botocores(True)


@pytest.mark.parametrize(
    ("file", "text", "hand_written"),
    [
        ("config", "[default]\nregion = eu-west-1\noutput = json\n", True),
        ("config", "[default]\nuse_fips_endpoint = true\n", False),
        ("config", "[default]\ns3 =\n  use_dualstack_endpoint = true\n", False),
        ("config", "[default]\ns3_us_east_1_regional_endpoint = regional\n", False),
        (
            "config",
            "[default]\nservices = mine\n[services mine]\ndynamodb =\n"
            "  endpoint_url = http://127.0.0.1:1\n",
            False,
        ),
        ("credentials", "[default]\nUSE_DUALSTACK_ENDPOINT = true\n", False),
    ],
)
def test_endpoint_settings_in_the_shared_files_are_left_to_botocore(
    file: str, text: str, hand_written: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / file).write_text(text)
    _environment(monkeypatch, "eu-west-1", {})

    assert_s3_urls_are_botocores(hand_written, monkeypatch)
    assert_dynamodb_is_botocores(hand_written)


def test_credentials_from_elsewhere_than_the_environment_leave_dynamodb_to_botocore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Their account id may route botocore to an account endpoint; only botocore can tell.
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file\n"
        "aws_account_id = 111122223333\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    _environment(monkeypatch, "us-west-2", {})

    assert_dynamodb_is_botocores(False)
    assert botocore_endpoint() == "https://111122223333.ddb.us-west-2.amazonaws.com"
    assert_s3_urls_are_botocores(True, monkeypatch)


@pytest.mark.parametrize(
    ("variables", "s3_hand_written", "dynamodb_hand_written"),
    [
        ({}, True, True),
        ({"AWS_ACCOUNT_ID": "123456789012"}, True, True),
        ({"AWS_ACCOUNT_ID_ENDPOINT_MODE": "required"}, True, False),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, False, False),
        ({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, False, False),
    ],
)
def test_a_custom_endpoint_is_botocores_or_botocore_serves(
    variables: dict[str, str],
    s3_hand_written: bool,
    dynamodb_hand_written: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _environment(
        monkeypatch,
        "us-east-1",
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "S3_ADDRESSING_STYLE": "path", **variables},
    )

    assert_s3_urls_are_botocores(s3_hand_written, monkeypatch)
    assert_dynamodb_is_botocores(dynamodb_hand_written)


def test_a_region_botocore_does_not_read_leaves_both_to_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # botocore reads AWS_DEFAULT_REGION, never AWS_REGION (Lambda sets both).
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    wiring.reset()

    assert_s3_urls_are_botocores(False, monkeypatch)
    assert_dynamodb_is_botocores(False)
