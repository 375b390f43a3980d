"""The API's errors as exceptions, raised where a problem is found and rendered in one place."""

from __future__ import annotations


class ApiError(Exception):
    """An error the wire contract documents: HTTP status, error code and fixed message."""

    http_status: int = 500
    error_code: int = 1002
    message: str = "Failed to compare face."

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or self.message)
        self.reason = reason

    @property
    def full_message(self) -> str:
        """The fixed text, with the short reason after it when there is one."""
        return f"{self.message}: {self.reason}" if self.reason else self.message


class ImagesRequired(ApiError):
    http_status, error_code, message = 400, 1000, "Two Images are Required"


class Unauthorized(ApiError):
    http_status, error_code, message = 401, 1001, "Workspace is unavailable"


class Forbidden(ApiError):
    http_status, error_code, message = 403, 1001, "Workspace is unavailable"


class CallbackRequired(ApiError):
    http_status, error_code, message = 400, 1010, "callbackUrl is required"


class BadInput(ApiError):
    http_status, error_code, message = 400, 1003, "Failed to process data"


class BodyTooLarge(ApiError):
    http_status, error_code, message = 413, 1003, "Failed to process data"


class InferenceFailed(ApiError):
    http_status, error_code, message = 500, 1002, "Failed to compare face."


class NotReady(ApiError):
    """Models loading, engines building, or the queue is full: the client should retry."""

    http_status, error_code, message = 503, 1002, "Failed to compare face."

    def __init__(self, reason: str | None = None, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
