"""HTTP API adapter: turns API Gateway HTTP API events into calls on ``Uploads``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.auth import Caller, caller_from_claims
from quota_uploads.errors import ClientError, Forbidden
from quota_uploads.models import (
    FileList,
    InsufficientStorageBody,
    QuotaUpdate,
    UploadGrant,
    UploadRequest,
    Usage,
    UserQuota,
)
from quota_uploads.validation import describe_validation_errors

logger = Logger()
app = APIGatewayHttpResolver(enable_validation=True)


def caller() -> Caller:
    return caller_from_claims(app.current_event.request_context.authorizer.jwt_claim)


def _error(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(ClientError)
def client_error(error: ClientError) -> Response[Any]:
    logger.info("request refused", status=error.status, reason=error.message)
    return _error(error.status, error.body())


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[Any]:
    return _error(
        400, {"error": "Bad Request", "message": describe_validation_errors(error.errors())}
    )


@app.not_found
def not_found(_: NotFoundError) -> Response[Any]:
    return _error(404, {"error": "Not Found", "message": "no such route"})


@app.post(
    "/uploads",
    responses={
        201: {
            "description": "Upload granted",
            "content": {"application/json": {"model": UploadGrant}},
        },
        507: {
            "description": "The upload would exceed the quota",
            "content": {"application/json": {"model": InsufficientStorageBody}},
        },
    },
)
def start_upload(request: Annotated[UploadRequest, Body()]) -> Response[UploadGrant]:
    grant = wiring.uploads().start(caller().sub, request)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=grant)


@app.get("/usage")
def get_usage() -> Usage:
    return wiring.uploads().usage(caller().sub)


@app.get("/files")
def list_files(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2048)] = None,
) -> FileList:
    return wiring.uploads().list_files(caller().sub, limit, next_token)


@app.delete("/files/<key>")
def delete_file(key: Annotated[str, Path(max_length=2048)]) -> Response[None]:
    # The key travels as one URL-encoded path segment (encodeURIComponent).
    wiring.uploads().delete_file(caller().sub, unquote(key))
    return Response(status_code=204)


@app.put("/admin/users/<user_id>/quota")
def set_quota(
    user_id: Annotated[str, Path(max_length=128)], update: Annotated[QuotaUpdate, Body()]
) -> UserQuota:
    admins = wiring.settings().admin_group
    if admins not in caller().groups:
        raise Forbidden(f"only members of the {admins} group may change quotas")
    return wiring.uploads().set_quota(user_id, update.quota_bytes)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
