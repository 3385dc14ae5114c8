"""HTTP API adapter: turns API Gateway HTTP API events into calls on ``Uploads``."""

from __future__ import annotations

import gc

# Off until wiring.end_init(): collecting what init builds is wasted work on a cold start.
gc.disable()

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from quota_uploads import wiring
from quota_uploads.auth import Caller, caller_from_claims
from quota_uploads.errors import ClientError, Forbidden, QuotaExceeded
from quota_uploads.models import (
    CompletedUpload,
    CompleteRequest,
    ErrorBody,
    FileDownload,
    FileList,
    GatewayErrorBody,
    InsufficientStorageBody,
    MultipartGrant,
    PartsRequest,
    QuotaUpdate,
    ServerErrorBody,
    SignedParts,
    UploadedParts,
    UploadGrant,
    UploadRequest,
    Usage,
    UserQuota,
)
from quota_uploads.tracing import traced
from quota_uploads.validation import describe_validation_errors, parse_json_object

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_object)

_ERRORS = {
    400: "Invalid input",
    401: "No valid bearer token",
    403: "Not allowed for this user",
    404: "No such file or route",
    409: "Too many uploads in progress",
    413: "Larger than a single PUT can carry",
    415: "The body is not JSON",
}


def _documented(success: int, model: Any, description: str, *errors: int) -> dict[int, Any]:
    """The OpenAPI responses of a route: its success and every error it can answer."""
    responses: dict[int, Any] = {
        status: {
            "description": _ERRORS[status],
            "content": {
                "application/json": {"model": GatewayErrorBody if status == 401 else ErrorBody}
            },
        }
        for status in (400, 401, *errors)
    }
    responses[500] = {
        "description": "A fault of the service, logged under the request id",
        "content": {"application/json": {"model": ServerErrorBody}},
    }
    body = {"content": {"application/json": {"model": model}}} if model else {}
    responses[success] = {"description": description, **body}
    return responses


def caller() -> Caller:
    return caller_from_claims(app.current_event.request_context.authorizer.jwt_claim)


def _error(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


_E = TypeVar("_E", bound=Exception)
_ErrorHandler = Callable[[_E], Response[Any]]


def _handles(exc_class: type[_E]) -> Callable[[_ErrorHandler[_E]], _ErrorHandler[_E]]:
    """``app.exception_handler``, typed: Powertools' decorator is unannotated, so the functions
    it registers would lose their types. It registers the function and returns it unchanged."""
    register: Callable[[_ErrorHandler[_E]], _ErrorHandler[_E]] = app.exception_handler(exc_class)
    return register


@_handles(ClientError)
def client_error(error: ClientError) -> Response[Any]:
    if isinstance(error, QuotaExceeded):
        metrics.add_metric(name="UploadsRejected", unit=MetricUnit.Count, value=1)
    logger.info("request refused", status=error.status, reason=error.message)
    return _error(error.status, error.body())


@_handles(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[Any]:
    return _error(
        400, {"error": "Bad Request", "message": describe_validation_errors(error.errors())}
    )


@_handles(RequestUnsupportedContentType)
def unsupported_content_type(_: RequestUnsupportedContentType) -> Response[Any]:
    return _error(
        415,
        {"error": "Unsupported Media Type", "message": "send the body as application/json"},
    )


@_handles(NotFoundError)  # what app.not_found registers, typed
def not_found(_: NotFoundError) -> Response[Any]:
    return _error(404, {"error": "Not Found", "message": "no such route"})


@_handles(Exception)
def server_error(error: Exception) -> Response[Any]:
    """Anything unforeseen: logged with its stack, counted, and answered in the API's shape."""
    request_id = app.current_event.request_context.request_id
    logger.exception("unhandled error", request_id=request_id)
    metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    return _error(
        500,
        {
            "error": "Internal Server Error",
            "message": "The service failed to answer; try again, and quote the request id if "
            "it keeps failing.",
            "requestId": request_id,
        },
    )


@app.post(
    "/uploads",
    responses={
        **_documented(
            201,
            UploadGrant | MultipartGrant,
            "Upload granted: PUT the file to the URL, or (method MULTIPART) sign its parts",
            409,
            413,
            415,
        ),
        507: {
            "description": "The upload would exceed the quota",
            "content": {"application/json": {"model": InsufficientStorageBody}},
        },
    },
)
def start_upload(
    request: Annotated[UploadRequest, Body()],
) -> Response[UploadGrant | MultipartGrant]:
    grant = wiring.uploads().start(caller().sub, request)
    metrics.add_metric(name="UploadsGranted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="GrantedBytes", unit=MetricUnit.Bytes, value=request.size)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=grant)


UploadId = Annotated[str, Path(max_length=64)]


@app.post(
    "/uploads/<uploadId>/parts",
    responses=_documented(200, SignedParts, "One signed PUT URL per requested part", 404, 415),
)
def sign_parts(
    uploadId: UploadId,
    request: Annotated[PartsRequest, Body()],
) -> SignedParts:
    return wiring.uploads().sign_parts(caller().sub, uploadId, request.part_numbers)


@app.get(
    "/uploads/<uploadId>/parts",
    responses=_documented(200, UploadedParts, "The parts S3 holds so far", 404),
)
def list_parts(uploadId: UploadId) -> UploadedParts:
    return wiring.uploads().list_parts(caller().sub, uploadId)


@app.post(
    "/uploads/<uploadId>/complete",
    responses=_documented(200, CompletedUpload, "The object is assembled", 404, 413, 415),
)
def complete_upload(
    uploadId: UploadId,
    request: Annotated[CompleteRequest, Body()],
) -> CompletedUpload:
    return wiring.uploads().complete(caller().sub, uploadId, request)


@app.delete(
    "/uploads/<uploadId>",
    responses=_documented(204, None, "Aborted; the reservation is released", 404),
)
def abort_upload(uploadId: UploadId) -> Response[None]:
    wiring.uploads().abort(caller().sub, uploadId)
    return Response(status_code=204)


@app.get("/usage", responses=_documented(200, Usage, "The caller's usage"))
def get_usage() -> Usage:
    return wiring.uploads().usage(caller().sub)


@app.get("/files", responses=_documented(200, FileList, "A page of the caller's files"))
def list_files(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2048)] = None,
) -> FileList:
    return wiring.uploads().list_files(caller().sub, limit, next_token)


@app.get(
    "/files/<key>",
    responses=_documented(200, FileDownload, "A short-lived URL downloading the file", 404),
)
def download_file(key: Annotated[str, Path(max_length=2048)]) -> FileDownload:
    # The key travels as one URL-encoded path segment (encodeURIComponent), as for DELETE.
    return wiring.uploads().download(caller().sub, unquote(key))


@app.delete("/files/<key>", responses=_documented(204, None, "Deleted", 404))
def delete_file(key: Annotated[str, Path(max_length=2048)]) -> Response[None]:
    # The key travels as one URL-encoded path segment (encodeURIComponent).
    wiring.uploads().delete_file(caller().sub, unquote(key))
    return Response(status_code=204)


@app.put(
    "/admin/users/<userId>/quota", responses=_documented(200, UserQuota, "Quota set", 403, 415)
)
def set_quota(
    userId: Annotated[str, Path(max_length=128)],
    update: Annotated[QuotaUpdate, Body()],
) -> UserQuota:
    admins = wiring.settings().admin_group
    if admins not in caller().groups:
        raise Forbidden(f"only members of the {admins} group may change quotas")
    return wiring.uploads().set_quota(userId, update.quota_bytes)


def openapi_document() -> str:
    """The API's OpenAPI document, generated from the routes and models above."""
    # Powertools' OpenAPI models take ~40 ms to import: keep them off the cold start.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return app.get_openapi_json_schema(
        title="quota-uploads",
        version="1.0.0",
        description="Presigned S3 uploads that keep every user inside a storage quota.",
        security_schemes={"cognito": HTTPBearer(bearerFormat="JWT")},
        security=[{"cognito": []}],
    )


@traced
@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


wiring.end_init()
