"""Errors a client can cause, each with the HTTP status that reports it."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """A request the service refuses; never a fault of the service itself."""

    status = 400
    title = "Bad Request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.title, "message": self.message}


class InvalidRequest(ClientError):
    pass


class Unauthorized(ClientError):
    status = 401
    title = "Unauthorized"


class Forbidden(ClientError):
    status = 403
    title = "Forbidden"


class NotFound(ClientError):
    status = 404
    title = "Not Found"


class Conflict(ClientError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(ClientError):
    status = 413
    title = "Payload Too Large"


class QuotaExceeded(ClientError):
    """RFC 4918's 507: the upload would not fit in the user's remaining quota."""

    status = 507
    title = "Insufficient Storage"

    def __init__(
        self, *, used_bytes: int, reserved_bytes: int, quota_bytes: int, requested_bytes: int
    ) -> None:
        self.used_bytes = used_bytes
        self.reserved_bytes = reserved_bytes
        self.quota_bytes = quota_bytes
        self.requested_bytes = requested_bytes
        self.available_bytes = max(0, quota_bytes - used_bytes - reserved_bytes)
        missing = used_bytes + reserved_bytes + requested_bytes - quota_bytes
        super().__init__(
            f"This upload needs {requested_bytes} bytes but only {self.available_bytes} of your "
            f"{quota_bytes} bytes are free ({used_bytes} used, {reserved_bytes} reserved by "
            f"uploads in progress). Delete files to free at least {missing} bytes, then try again."
        )

    def body(self) -> dict[str, Any]:
        return {
            **super().body(),
            "usedBytes": self.used_bytes,
            "reservedBytes": self.reserved_bytes,
            "quotaBytes": self.quota_bytes,
            "requestedBytes": self.requested_bytes,
            "availableBytes": self.available_bytes,
        }
