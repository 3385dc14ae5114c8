"""An API Gateway HTTP API on localhost: routes from the template, a JWT authorizer, v2 events.

Each request becomes the payload-format-2.0 event API Gateway would send, claims included where
its JWT authorizer puts them (every claim a string, arrays flattened to ``[a b]``), and the real
handler's response goes back to the client. Tokens come from the local user pool: through
Cognito's API at ``/local/cognito`` (what the web page uses), or minted for a name by
``POST /local/token``, a shortcut for scripts and tests that exists only here.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote
from wsgiref.types import StartResponse, WSGIEnvironment

from botocore.exceptions import ClientError
from werkzeug.wrappers import Request, Response

from local_stack.cognito import JwtAuthorizer, LocalCognito
from local_stack.functions import Function, Route

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
# Uppy's prebuilt bundle, from the npm package (no build step): served under /vendor/uppy/.
VENDOR = {"/vendor/uppy/": WEB_ROOT.parent / "node_modules" / "uppy" / "dist"}
# Cognito's endpoint for the page and scripts, as https://cognito-idp.<region>.amazonaws.com/ is.
COGNITO_PATHS = ("/local/cognito", "/local/cognito/")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_STATIC_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
}


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


class HttpApi:
    """A WSGI application standing in for API Gateway in front of the template's functions."""

    def __init__(
        self,
        routes: Iterable[Route],
        functions: Mapping[str, Function],
        authorizer: JwtAuthorizer,
        cognito: LocalCognito,
        page_config: Mapping[str, Any],
    ) -> None:
        self._routes = list(routes)
        self._functions = functions
        self._authorizer = authorizer
        self._cognito = cognito
        self._page_config = {
            **page_config,
            "cognitoEndpoint": COGNITO_PATHS[0],
            "userPoolId": cognito.pool.pool_id,
            "userPoolClientId": cognito.pool.client_id,
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        raw_path = request.environ.get("RAW_URI", request.full_path).split("?", 1)[0]
        if request.method == "POST" and raw_path == "/local/token":
            return self._token(request)
        if request.method == "POST" and raw_path in COGNITO_PATHS:
            target = request.headers.get("X-Amz-Target", "")
            status, body = self._cognito.call(target, request.get_data())
            return Response(body, status=status, content_type="application/x-amz-json-1.1")
        if request.method == "GET" and raw_path == "/openapi.json":
            return self._openapi()
        if request.method == "GET" and raw_path == "/local/config":
            return _json(200, self._page_config)
        for route in self._routes:
            parameters = route.match(request.method, raw_path)
            if parameters is not None:
                return self._invoke(request, route, raw_path, parameters)
        static = self._static(raw_path) if request.method == "GET" else None
        return static or _json(404, {"message": "Not Found"})

    def _token(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True)
        user = body.get("user") if isinstance(body, dict) else None
        groups = body.get("groups", []) if isinstance(body, dict) else []
        if not isinstance(user, str) or not user:
            message = "user must be an email, or a name (taken as <name>@example.com)"
            return _json(400, {"error": "Bad Request", "message": message})
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return _json(400, {"error": "Bad Request", "message": "groups must be strings"})
        if any(not g or any(c.isspace() for c in g) for g in groups):
            # As Cognito: a group name holds no whitespace, which is what lets the API read
            # API Gateway's flattened "[a b]" claim back into groups.
            return _json(400, {"error": "Bad Request", "message": "group names hold no whitespace"})
        try:
            sub, token = self._cognito.mint(user, groups)
        except ClientError as error:
            return _json(
                400, {"error": "Bad Request", "message": error.response["Error"]["Message"]}
            )
        return _json(200, {"token": token, "sub": sub})

    def _openapi(self) -> Response:
        """The API functions' own OpenAPI document, for people and for fuzzers."""
        for function in self._functions.values():
            document = getattr(function.module, "openapi_document", None)
            if document is not None:
                return Response(document(), content_type="application/json")
        return _json(404, {"message": "Not Found"})

    def _static(self, raw_path: str) -> Response | None:
        root, name = WEB_ROOT, "index.html" if raw_path == "/" else raw_path.lstrip("/")
        for prefix, directory in VENDOR.items():
            if raw_path.startswith(prefix):
                root, name = directory, raw_path[len(prefix) :]
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        content_type = _STATIC_TYPES.get(path.suffix, "application/octet-stream")
        return Response(path.read_bytes(), content_type=content_type)

    def _invoke(
        self, request: Request, route: Route, raw_path: str, parameters: dict[str, str]
    ) -> Response:
        claims = self._authorizer.claims(request.headers.get("Authorization"))
        if claims is None:
            return _json(401, {"message": "Unauthorized"})
        event = api_gateway_event(request, route, raw_path, parameters, claims)
        result = self._functions[route.function].invoke(event)
        return _response_of(result)


def api_gateway_event(
    request: Request,
    route: Route,
    raw_path: str,
    parameters: Mapping[str, str],
    claims: Mapping[str, str],
) -> dict[str, Any]:
    """The HTTP API payload-format-2.0 event for one request."""
    body = request.get_data()
    content_type = request.headers.get("Content-Type", "")
    is_text = content_type.startswith(_TEXT_TYPES) or not content_type
    raw_query = request.environ.get("QUERY_STRING", "")
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(name, []).append(value)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": dict(claims), "scopes": None}},
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body) and not is_text,
    }
    if request.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    if parameters:
        event["pathParameters"] = {k: unquote(v) for k, v in parameters.items()}
    if body:
        event["body"] = (
            base64.b64encode(body).decode()
            if event["isBase64Encoded"]
            else body.decode("utf-8", "replace")
        )
    return event


def _response_of(result: Any) -> Response:
    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway's rule for payload 2.0: anything else is a JSON 200.
        return _json(200, result)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(payload, status=int(result["statusCode"]))
    response.headers.clear()
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response
