"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with
the status OpenAI would send."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from llamadesk.api.schemas import ErrorBody, ErrorResponse
from llamadesk.services.engine_errors import (
    ContextFullError,
    EngineError,
    ModelLoadError,
    ToolsUnsupportedError,
)

log = logging.getLogger(__name__)

INVALID = "invalid_request_error"
SERVER = "server_error"


class ApiError(Exception):
    """An error to answer with; its message is safe to show (no request text)."""

    def __init__(self, status: int, message: str, *, type_: str = INVALID,
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        error = ErrorBody(message=self.message, type=self.type, param=self.param,
                          code=self.code)
        return ErrorResponse(error=error).model_dump()

    def response(self) -> JSONResponse:
        """The HTTP response."""
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def unknown_model(model_id: str) -> ApiError:
    """404 for a model that is not installed."""
    return ApiError(404, f"The model {model_id!r} does not exist or is not installed; "
                    "GET /v1/models lists the installed ones.", code="model_not_found",
                    param="model")


def unsupported(param: str, message: str) -> ApiError:
    """400 for a parameter LlamaDesk does not support."""
    return ApiError(400, message, code="unsupported_parameter", param=param)


def from_engine(error: EngineError) -> ApiError:
    """The answer to a job that failed on the inference worker."""
    if isinstance(error, ModelLoadError):
        return ApiError(500, f"The model failed to load: {error}", type_=SERVER,
                        code="model_load_failed", param="model")
    if isinstance(error, ToolsUnsupportedError):
        return ApiError(400, str(error), code="tools_not_supported", param="tools")
    if isinstance(error, ContextFullError):
        if error.n_prompt is not None and error.n_ctx is not None:
            message = (f"The prompt takes {error.n_prompt} tokens and the model's context "
                       f"holds {error.n_ctx}, which leaves no room for a reply; shorten the "
                       "messages or ask for fewer tokens.")
        else:
            limit = f" (the context holds {error.n_ctx} tokens)" if error.n_ctx else ""
            message = f"The prompt is longer than the model's context{limit}: {error}"
        return ApiError(400, message, code="context_length_exceeded", param="messages")
    return ApiError(500, str(error), type_=SERVER, code="generation_failed")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "The request body is not valid.", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    location = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(location) or None
    where = f" ({param})" if param else ""
    return f"Invalid request{where}: {first.get('msg', 'not valid')}.", param


def install_handlers(app: FastAPI) -> None:
    """Answer every error in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return ApiError(400, message, param=param).response()

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return ApiError(exc.status_code, str(exc.detail), code=code).response()

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in the local API")
        return ApiError(500, f"Unexpected error: {type(exc).__name__}",
                        type_=SERVER).response()
