"""S3's checks of presigned (SigV4 query) requests, in front of moto, which makes none.

moto stores whatever reaches it: a body one byte longer than the signed ``Content-Length``, a
URL past its expiry, a tampered signature. S3 refuses all of them, and our quota rests on that
refusal, so the local stack refuses them here, with S3's errors, checked the way LocalStack's
S3 checks them: the request is rebuilt from what actually arrived (method, raw path, query
without ``X-Amz-Signature``, and the received values of the headers named in
``X-Amz-SignedHeaders``, ``Host`` included), signed again with botocore's own
``S3SigV4QueryAuth`` at the request's ``X-Amz-Date``, and the two signatures compared. A
refused request never reaches moto: nothing is stored or counted.

Only query-signed requests are checked. Requests signed in an ``Authorization`` header (every
call the functions make through botocore), CORS preflights and unsigned requests pass through
unchanged (S3 would refuse an anonymous write to a private bucket; this does not).
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# What the local stack's functions sign with (local_stack.stack sets them in the environment).
LOCAL_CREDENTIALS: Mapping[str, str] = {"local": "local"}

_ALGORITHM = "AWS4-HMAC-SHA256"
_SIGNATURE = "X-Amz-Signature"
_QUERY_AUTH = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    _SIGNATURE,
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_MAX_EXPIRES = 604800
# SDKs send it unsigned beside presigned URLs; LocalStack does not count it among unsigned
# headers (its S3 tests are recorded against AWS), so neither does this.
_NOT_COUNTED = frozenset({"x-amz-content-sha256"})
# Every printable ASCII character but space: a raw path keeps its own escapes, and only bytes a
# client should have escaped (space, controls, non-ASCII) are escaped, as a browser does.
_PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))
_CORS_HEADERS = ("access-control-allow-origin", "access-control-expose-headers")
_VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


class S3Error(Exception):
    """An error as S3 answers it: status, code, message and the code's own detail elements."""

    def __init__(
        self, status: int, code: str, message: str, details: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = tuple(details)

    def xml(self, request_id: str, host_id: str) -> bytes:
        elements = [("Code", self.code), ("Message", self.message), *self.details]
        elements += [("RequestId", request_id), ("HostId", host_id)]
        body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in elements)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()


def _query_error(message: str) -> S3Error:
    return S3Error(400, "AuthorizationQueryParametersError", message)


def is_query_signed(environ: WSGIEnvironment) -> bool:
    """Whether the request carries any SigV4 query-authentication parameter."""
    names = {name for name, _ in _query_pairs(environ.get("QUERY_STRING", ""))}
    return any(name in names for name in _QUERY_AUTH)


def verify(environ: WSGIEnvironment, credentials: Mapping[str, str], now: datetime) -> None:
    """Raises the ``S3Error`` S3 answers a query-signed request with, if it would refuse it."""
    pairs = _query_pairs(environ.get("QUERY_STRING", ""))
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    if environ.get("HTTP_AUTHORIZATION"):
        raise S3Error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            [("ArgumentName", "Authorization"), ("ArgumentValue", environ["HTTP_AUTHORIZATION"])],
        )
    if any(name not in params for name in _QUERY_AUTH):
        raise _query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != _ALGORITHM:
        raise _query_error(f'X-Amz-Algorithm only supports "{_ALGORITHM}"')
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise _query_error(
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, _, region, service, _ = scope
    if service != "s3":
        raise _query_error(
            f'Error parsing the X-Amz-Credential parameter; incorrect service "{service}". '
            'This endpoint belongs to "s3".'
        )
    date = params["X-Amz-Date"]
    try:
        signed_at = datetime.strptime(date, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise _query_error(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        ) from None
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        raise _query_error("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires > _MAX_EXPIRES:
        raise _query_error(
            f"X-Amz-Expires must be less than a week (in seconds) that is {_MAX_EXPIRES}"
        )
    secret = credentials.get(access_key)
    if secret is None:
        raise S3Error(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            [("AWSAccessKeyId", access_key)],
        )

    signed_names = params["X-Amz-SignedHeaders"].lower().split(";")
    unsigned = [
        name
        for name in _amz_headers(environ)
        if name not in signed_names and name not in _NOT_COUNTED
    ]
    if unsigned:
        raise S3Error(
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
            [("HeadersNotSigned", ", ".join(unsigned))],
        )

    # The request as it arrived: received header values, raw path, the query re-encoded as
    # SigV4 canonicalises it. botocore sorts the query and formats the headers itself.
    headers = {
        name: received for name in signed_names if (received := _header(environ, name)) is not None
    }
    query = "&".join(
        f"{_encode(name)}={_encode(value)}" for name, value in pairs if name != _SIGNATURE
    )
    host = environ.get("HTTP_HOST", "")
    request = AWSRequest(
        method=environ["REQUEST_METHOD"],
        url=f"http://{host}{raw_path(environ)}?{query}",
        headers=headers,
    )
    request.context["timestamp"] = date
    signer = _Resigner(Credentials(access_key, secret), "s3", region, expires=expires)
    expected, canonical_request, string_to_sign = signer.resign(request)
    provided = params[_SIGNATURE]
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            [
                ("AWSAccessKeyId", access_key),
                ("StringToSign", string_to_sign),
                ("SignatureProvided", provided),
                ("StringToSignBytes", string_to_sign.encode().hex(" ")),
                ("CanonicalRequest", canonical_request),
                ("CanonicalRequestBytes", canonical_request.encode().hex(" ")),
            ],
        )

    expiry = signed_at + timedelta(seconds=expires)
    if now > expiry:
        raise S3Error(
            403,
            "AccessDenied",
            "Request has expired",
            [
                ("X-Amz-Expires", str(expires)),
                ("Expires", expiry.strftime("%Y-%m-%dT%H:%M:%SZ")),
                ("ServerTime", now.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ],
        )


class _Resigner(S3SigV4QueryAuth):
    """botocore's presigner, asked only for its signature of a request already presigned.

    ``add_auth`` would stamp the current time and append its own query parameters; the
    request here already has them, and its ``X-Amz-Date`` is the timestamp.
    """

    def resign(self, request: AWSRequest) -> tuple[str, str, str]:
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        return self.signature(string_to_sign, request), canonical_request, string_to_sign


def raw_path(environ: WSGIEnvironment) -> str:
    """The path exactly as the client sent it, escapes and all (``PATH_INFO`` is decoded)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
        return quote(path, safe="/~")
    # werkzeug hands the request target on as UTF-8 bytes of its latin-1 reading: undo both.
    try:
        target = raw.encode("latin-1").decode("utf-8").encode("latin-1")
    except UnicodeError:  # a server that passes the target on as text
        target = raw.encode("utf-8")
    target = target.split(b"#", 1)[0].split(b"?", 1)[0]
    if b"://" in target:  # absolute-form, as sent to a proxy
        target = b"/" + target.split(b"://", 1)[1].partition(b"/")[2]
    return quote(target, safe=_PRINTABLE)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    # Percent-decoded only: SigV4 signs "+" as itself (%2B), not as a space.
    pairs = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _amz_headers(environ: WSGIEnvironment) -> list[str]:
    return sorted(
        key[5:].lower().replace("_", "-") for key in environ if key.startswith("HTTP_X_AMZ_")
    )


def _header(environ: WSGIEnvironment, name: str) -> str | None:
    key = name.upper().replace("-", "_")
    value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
    return None if value is None else str(value)


class PresignedUrlGuard:
    """WSGI middleware: answers as S3 would any query-signed request S3 would refuse."""

    def __init__(
        self,
        app: WSGIApplication,
        credentials: Mapping[str, str] = LOCAL_CREDENTIALS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._app = app
        self._credentials = credentials
        self._clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # A CORS preflight is never signed (its method is OPTIONS, not the URL's): S3 answers
        # it from the bucket's CORS rules alone.
        if environ.get("REQUEST_METHOD") != "OPTIONS" and is_query_signed(environ):
            try:
                verify(environ, self._credentials, self._clock())
            except S3Error as error:
                return self._refuse(environ, start_response, error)
        return self._app(environ, start_response)

    def _refuse(
        self, environ: WSGIEnvironment, start_response: StartResponse, error: S3Error
    ) -> Iterable[bytes]:
        _discard_body(environ)
        request_id = secrets.token_hex(8).upper()
        host_id = base64.b64encode(secrets.token_bytes(48)).decode()
        body = error.xml(request_id, host_id)
        headers = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(body))),
            ("x-amz-request-id", request_id),
            ("x-amz-id-2", host_id),
            *self._cors_headers(environ),
        ]
        start_response(f"{error.status} {_REASONS[error.status]}", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _cors_headers(self, environ: WSGIEnvironment) -> list[tuple[str, str]]:
        """The bucket's CORS answer for this origin and method, so a page can read the error.

        moto holds the CORS rules; it is asked the preflight question for this request.
        """
        if not environ.get("HTTP_ORIGIN"):
            return []
        preflight = {
            key: value
            for key, value in environ.items()
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING")
            and key != "wsgi.input_terminated"
        }
        preflight.update(
            {
                "REQUEST_METHOD": "OPTIONS",
                "HTTP_ACCESS_CONTROL_REQUEST_METHOD": environ["REQUEST_METHOD"],
                "wsgi.input": io.BytesIO(b""),
            }
        )
        answer: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> Callable[[bytes], object]:
            answer.append((status, headers))
            return lambda _: None

        result = self._app(preflight, capture)
        try:
            for _ in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not answer or not answer[0][0].startswith("200"):
            return []
        found = [(name, value) for name, value in answer[0][1] if name.lower() in _CORS_HEADERS]
        if found:
            found.append(("Vary", _VARY))
        return found


_REASONS = {400: "Bad Request", 403: "Forbidden"}


def _discard_body(environ: WSGIEnvironment) -> None:
    """Reads the refused body so the client, still sending it, gets the answer, not a reset."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    if environ.get("wsgi.input_terminated"):
        while stream.read(1 << 16):
            pass
        return
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 16))
        if not chunk:
            break
        remaining -= len(chunk)
