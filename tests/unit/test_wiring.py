"""The process's credentials, read without botocore where Lambda provides them, are botocore's."""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest

from quota_uploads import wiring
from quota_uploads.sigv4 import Credentials

CASES = [
    {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret"},
    {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "s"},
    {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SECURITY_TOKEN": "o"},
    {
        "AWS_ACCESS_KEY_ID": "AKIDENV",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "s",
        "AWS_SECURITY_TOKEN": "o",
    },
    {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": ""},
    # Not usable from the environment: botocore's chain goes on to the shared credentials file.
    {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "secret"},
    {},
]


@pytest.mark.parametrize("env", CASES)
def test_credentials_are_what_botocore_finds(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "credentials"
    shared.write_text("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file\n")
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset()

    found = botocore.session.Session().get_credentials()
    assert found is not None
    expected = found.get_frozen_credentials()

    assert wiring.current_credentials() == Credentials(
        str(expected.access_key), str(expected.secret_key), expected.token
    )
