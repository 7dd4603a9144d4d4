"""Errors of the OpenAI-compatible endpoint, in OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}`` with OpenAI's statuses, so the SDKs raise
their usual exceptions (see docs/api-keys.md for the table)."""

from __future__ import annotations

import logging
from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from runtime.api.errors import database_unavailable
from runtime.channels.budget import BudgetExceeded

logger = logging.getLogger("runtime.channels")


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        self.retry_after = retry_after

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body, status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model {model!r} does not exist or this API key may not use it. "
        "GET /v1/models lists the agents it may use.",
        code="model_not_found",
        param="model",
    )


def from_exception(exc: Exception) -> OpenAIError:
    """Any error before a run starts, in OpenAI's shape."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated):
        return OpenAIError(
            401,
            "Send your API key as 'Authorization: Bearer sk_live_...'. The agent's owner makes keys "
            "on the agent's API keys page.",
            code="missing_api_key",
        )
    if isinstance(exc, exceptions.AuthenticationFailed):
        return OpenAIError(401, str(exc.detail), code="invalid_api_key")
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        return OpenAIError(
            429,
            f"Rate limit reached for this API key; try again in {wait} s.",
            type="requests",
            code="rate_limit_exceeded",
            retry_after=wait,
        )
    if isinstance(exc, BudgetExceeded):
        return OpenAIError(
            429,
            str(exc),
            type="insufficient_quota",
            code="daily_budget_exceeded",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        return OpenAIError(405, str(exc.detail), code="method_not_allowed")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return OpenAIError(
            400, "Send the body as JSON (Content-Type: application/json).", code="invalid_body"
        )
    if isinstance(exc, exceptions.ParseError):
        return OpenAIError(400, f"The body is not valid JSON: {exc.detail}", code="invalid_body")
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict) and detail:
            field, problems = next(iter(detail.items()))
            message = problems[0] if isinstance(problems, list) and problems else str(problems)
            return OpenAIError(400, f"{field}: {message}", code="invalid_value", param=str(field))
        return OpenAIError(400, "The body is not valid.", code="invalid_body")
    if database_unavailable(exc):
        return OpenAIError(
            503,
            "The service cannot reach its database right now; try again in a few seconds.",
            type="server_error",
            code="service_unavailable",
            retry_after=5,
        )
    logger.exception("chat completion could not start")
    return OpenAIError(500, "The server could not start the run.", type="server_error", code="server_error")


def exception_handler(exc: Exception, context: Any) -> Response:
    error = from_exception(exc)
    response = Response(error.body, status=error.status)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response
