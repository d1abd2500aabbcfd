"""Error answers in one shape: ``{"error": <code>, "message": <sentence>, "errors": [{path, rule}]}``."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from wadispatch import jsonread
from wadispatch.errors import FieldError, WadispatchError
from wadispatch.messages import format_path

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


class ApiError(WadispatchError):
    """An error answer: HTTP status, stable code, message, field errors for a 422, extra headers."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        errors: list[FieldError] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}


def error_response(
    status: int,
    error: str,
    message: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": error,
        "message": message,
        "errors": [{"path": item.path, "rule": item.rule} for item in errors or []],
    }
    headers = dict(headers or {})
    if status == 401 and error == "unauthorized":
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.message, exc.errors, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), str(exc.detail))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own validation (path and query parameters, headers) in the same shape."""
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(format_path(tuple(detail["loc"])), detail["msg"]) for detail in exc.errors()]
    return error_response(422, "invalid_request", f"{len(errors)} problem(s)", errors)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, or a 413 as soon as it is longer than ``max_bytes`` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise ApiError(413, "body_too_large", f"the body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object (within :mod:`wadispatch.jsonread`'s limits), or a 400 saying where
    and why it was refused."""
    try:
        data = jsonread.loads(raw)
    except jsonread.JsonInputError as exc:
        raise ApiError(
            400, "malformed_json", exc.describe("the body"), [FieldError(exc.path, exc.rule)]
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return data
