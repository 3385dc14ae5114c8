"""Settings read from the environment, and the bounds they refuse."""

from __future__ import annotations

import pytest

from quota_uploads.config import MAX_URL_EXPIRY_SECONDS, ConfigError, Settings

REQUIRED = {"TABLE_NAME": "ledger", "BUCKET_NAME": "uploads"}


def test_the_url_lifetime_defaults_to_fifteen_minutes() -> None:
    assert Settings.from_env(REQUIRED).url_expiry_seconds == 900


def test_a_url_lifetime_up_to_the_bound_is_accepted() -> None:
    env = {**REQUIRED, "UPLOAD_URL_EXPIRY_SECONDS": str(MAX_URL_EXPIRY_SECONDS)}
    assert Settings.from_env(env).url_expiry_seconds == MAX_URL_EXPIRY_SECONDS


@pytest.mark.parametrize("seconds", [MAX_URL_EXPIRY_SECONDS + 1, 86400, 604800])
def test_a_url_lifetime_past_the_bound_is_refused(seconds: int) -> None:
    env = {**REQUIRED, "UPLOAD_URL_EXPIRY_SECONDS": str(seconds)}
    with pytest.raises(ConfigError, match="UPLOAD_URL_EXPIRY_SECONDS must be at most 3600"):
        Settings.from_env(env)


@pytest.mark.parametrize("raw", ["-1", "ten"])
def test_a_negative_or_non_integer_url_lifetime_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="UPLOAD_URL_EXPIRY_SECONDS"):
        Settings.from_env({**REQUIRED, "UPLOAD_URL_EXPIRY_SECONDS": raw})


def test_a_missing_table_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TABLE_NAME"):
        Settings.from_env({"BUCKET_NAME": "uploads"})
