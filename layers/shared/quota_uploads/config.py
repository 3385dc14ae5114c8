"""Runtime configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

MIB = 1024**2
GIB = 1024**3
# S3 refuses a single PUT above 5 GiB; larger objects need a multipart upload.
MAX_SINGLE_PUT_BYTES = 5 * GIB
MAX_OBJECT_BYTES = 5 * 1024**4
# The longest presigned URL lifetime we hand out (template: UploadUrlExpirySeconds MaxValue).
# The function signs with its execution role's temporary credentials, and S3 refuses a URL
# once the session token it carries has expired, whatever X-Amz-Expires says. Lambda does not
# document how long its credentials have left when the function signs (AWS notes it need not
# follow the role's session duration), so nothing longer than an hour, STS's default session,
# is offered: `expiresAt` and the reservation would otherwise promise time the URL may not have.
MAX_URL_EXPIRY_SECONDS = 3600
# Long enough to start a download, short enough that a shared link soon stops working.
DOWNLOAD_URL_SECONDS = 300


class ConfigError(ValueError):
    """The environment does not describe a usable deployment."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    default_quota_bytes: int
    url_expiry_seconds: int = 900
    reservation_grace_seconds: int = 120
    allowed_content_types: frozenset[str] = frozenset()
    admin_group: str = "admins"
    s3_addressing_style: str = "virtual"
    # SQS retries for 5 receives x 6 minutes; an hour is safely past any event in flight.
    reconcile_settle_seconds: int = 3600
    alert_threshold_percent: int = 80
    alert_rearm_percent: int = 70
    alerts_topic_arn: str = ""
    multipart_threshold_bytes: int = 100 * MIB
    multipart_part_bytes: int = 64 * MIB
    # S3's own floor for every part but the last; lowered only for local stacks.
    multipart_min_part_bytes: int = 5 * MIB
    # Matches the bucket's rule aborting incomplete multipart uploads after a day.
    multipart_lifetime_seconds: int = 86400
    # Bounds abuse, not cost: a grant costs the same however many uploads are open.
    max_open_uploads: int = 10_000
    # Where drift repair's work goes (the template's AuditQueue); only its functions need it.
    audit_queue_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            return cls(
                table_name=env["TABLE_NAME"],
                bucket_name=env["BUCKET_NAME"],
                default_quota_bytes=_non_negative(env, "DEFAULT_QUOTA_BYTES", GIB),
                url_expiry_seconds=_url_expiry_seconds(env),
                reservation_grace_seconds=_non_negative(env, "RESERVATION_GRACE_SECONDS", 120),
                allowed_content_types=frozenset(
                    t.strip().lower()
                    for t in env.get("ALLOWED_CONTENT_TYPES", "").split(",")
                    if t.strip()
                ),
                admin_group=env.get("ADMIN_GROUP", "admins"),
                s3_addressing_style=env.get("S3_ADDRESSING_STYLE", "virtual"),
                reconcile_settle_seconds=_non_negative(env, "RECONCILE_SETTLE_SECONDS", 3600),
                alert_threshold_percent=_non_negative(env, "USER_ALERT_PERCENT", 80),
                alert_rearm_percent=_non_negative(env, "USER_ALERT_REARM_PERCENT", 70),
                alerts_topic_arn=env.get("ALERTS_TOPIC_ARN", ""),
                multipart_threshold_bytes=_non_negative(
                    env, "MULTIPART_THRESHOLD_BYTES", 100 * MIB
                ),
                multipart_part_bytes=_non_negative(env, "MULTIPART_PART_BYTES", 64 * MIB),
                multipart_min_part_bytes=_non_negative(env, "MULTIPART_MIN_PART_BYTES", 5 * MIB),
                multipart_lifetime_seconds=_non_negative(
                    env, "MULTIPART_RESERVATION_SECONDS", 86400
                ),
                max_open_uploads=_non_negative(env, "MAX_OPEN_UPLOADS", 10_000),
                audit_queue_url=env.get("AUDIT_QUEUE_URL", ""),
            )
        except KeyError as missing:
            raise ConfigError(f"environment variable {missing} is required") from None

    @property
    def reservation_lifetime_seconds(self) -> int:
        """A reservation outlives its URL by the grace, so an upload started at expiry can land."""
        return self.url_expiry_seconds + self.reservation_grace_seconds


def _url_expiry_seconds(env: Mapping[str, str]) -> int:
    # No floor beyond zero here: the template's MinValue (60 s) guards deployments, while the
    # tests and the local stack let URLs expire within seconds.
    value = _non_negative(env, "UPLOAD_URL_EXPIRY_SECONDS", 900)
    if value > MAX_URL_EXPIRY_SECONDS:
        raise ConfigError(
            f"UPLOAD_URL_EXPIRY_SECONDS must be at most {MAX_URL_EXPIRY_SECONDS}, got {value}: "
            "a URL signed with the function's temporary credentials dies with them"
        )
    return value


def _non_negative(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value
