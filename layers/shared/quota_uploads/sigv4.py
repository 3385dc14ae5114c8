"""SigV4, byte for byte what botocore produces: S3 PUT URLs here, DynamoDB headers beside.

Presigning is pure computation: an HMAC chain over a canonical request. botocore spends
~190 µs per URL building a request object through its event system; the benchmark showed it
as the largest cost of a grant after the DynamoDB call, so the upload path signs here instead.
``tests/unit/test_sigv4.py`` proves the output identical to botocore's for generated inputs.

Only what this service signs is covered: PUT (whole objects and parts), SigV4, unsigned
payload, virtual-hosted regional endpoints of any partition (named by its DNS suffix, and S3's
global host in us-east-1 unless ``regional`` is asked for) or a path-style custom endpoint;
``wiring.signer`` leaves every other endpoint setting to botocore. The signing steps below the
presigner are shared with ``dynamodb_fast``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit

_ALGORITHM = "AWS4-HMAC-SHA256"
# Bucket names S3 can serve from a virtual host over TLS: no dots, no uppercase.
_VIRTUAL_HOST_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def amz_date(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date[:8]}/{region}/{service}/aws4_request"


def host_header(scheme: str, netloc: str) -> str:
    """The Host a request to ``netloc`` carries: the default port for the scheme left out."""
    default = {"http": ":80", "https": ":443"}.get(scheme)
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def canonical_headers(headers: Mapping[str, str], host: str) -> tuple[str, str]:
    """The signed header names and the canonical header block, ``host`` included."""
    values = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    values["host"] = host
    names = sorted(values)
    return ";".join(names), "".join(f"{name}:{values[name]}\n" for name in names)


@lru_cache(maxsize=8)
def _signing_key(secret_key: str, scope: str) -> bytes:
    # One key per secret and day: cached, as every URL and request of the day reuses it.
    key = f"AWS4{secret_key}".encode()
    for part in scope.split("/"):
        key = _hmac(key, part)
    return key


def signature(secret_key: str, date: str, scope: str, canonical_request: str) -> str:
    """The hex signature of a canonical request made at ``date`` within ``scope``."""
    string_to_sign = "\n".join(
        [_ALGORITHM, date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _signing_key(secret_key, scope)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(credentials: Credentials, scope: str, signed: str, signed_by: str) -> str:
    """The ``Authorization`` header of a request signed (``signed_by``) within ``scope``."""
    return (
        f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signed_by}"
    )


class S3Presigner:
    """Signs PUT URLs for one bucket; credentials are fetched per URL so rotation is seen."""

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        credentials: Callable[[], Credentials],
        endpoint_url: str | None = None,
        dns_suffix: str = "amazonaws.com",
        us_east_1_regional: bool = False,
    ) -> None:
        if endpoint_url:
            parts = urlsplit(endpoint_url)
            self._base = f"{parts.scheme}://{parts.netloc}"
            self._host = host_header(parts.scheme, parts.netloc)
            self._prefix = f"/{bucket}/"
        else:
            # botocore's default (AWS_S3_US_EAST_1_REGIONAL_ENDPOINT=legacy) in us-east-1.
            global_host = region == "us-east-1" and not us_east_1_regional
            domain = f"s3.{dns_suffix}" if global_host else f"s3.{region}.{dns_suffix}"
            self._host = f"{bucket}.{domain}"
            self._base = f"https://{self._host}"
            self._prefix = "/"
        self._region = region
        self._credentials = credentials

    @staticmethod
    def supports(bucket: str, endpoint_url: str | None, addressing_style: str) -> bool:
        """Whether this signer reproduces botocore for the deployment's S3 settings."""
        if endpoint_url:
            return addressing_style == "path"
        return addressing_style in ("virtual", "auto") and bool(
            _VIRTUAL_HOST_BUCKET.fullmatch(bucket)
        )

    def presign_put(
        self,
        key: str,
        *,
        headers: dict[str, str],
        query: Sequence[tuple[str, str]] = (),
        expires_in: int,
        now: datetime | None = None,
    ) -> str:
        """A presigned PUT URL whose signature covers ``headers`` (and the host)."""
        date = amz_date(now or datetime.now(UTC))
        credentials = self._credentials()
        scope = credential_scope(date, self._region, "s3")
        signed, header_block = canonical_headers(headers, self._host)
        params = [(name, _encode(value)) for name, value in query]
        params += [
            ("X-Amz-Algorithm", _ALGORITHM),
            ("X-Amz-Credential", _encode(f"{credentials.access_key}/{scope}")),
            ("X-Amz-Date", date),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", _encode(signed)),
        ]
        if credentials.token is not None:
            params.append(("X-Amz-Security-Token", _encode(credentials.token)))
        path = self._prefix + quote(key, safe="/~")
        query_string = "&".join(f"{name}={value}" for name, value in params)
        canonical_request = "\n".join(
            [
                "PUT",
                path,
                "&".join(f"{name}={value}" for name, value in sorted(params)),
                header_block,
                signed,
                "UNSIGNED-PAYLOAD",
            ]
        )
        signed_by = signature(credentials.secret_key, date, scope, canonical_request)
        return f"{self._base}{path}?{query_string}&X-Amz-Signature={signed_by}"
