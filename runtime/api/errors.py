"""Every API error is JSON: ``{"error": {"code", "message", "fields"}}``.

``code`` is stable (clients branch on it), ``message`` is for a person, and
``fields`` maps each bad request field to what is wrong with it. Unexpected
exceptions are logged with their stack trace and answered with a generic 500;
no traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as page_server_error
from rest_framework import exceptions, status
from rest_framework.response import Response

from runtime.services import RunAlreadyFinished, RunInputError
from runtime.streaming.stream import database_unavailable

logger = logging.getLogger("runtime.api")

_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


# Seconds a client is asked to wait when the database cannot be reached (a restart, a failover).
DATABASE_RETRY_AFTER = 5


def database_unavailable_response(response_class=None):
    """503 with Retry-After; ``response_class`` is DRF's Response inside DRF views."""
    body = error_body(
        "database_unavailable",
        "The service cannot reach its database right now (it may be restarting). Try again in a few seconds.",
    )
    response = (response_class or JsonResponse)(body, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status_code: int, code: str, message: str, fields: dict[str, list[str]] | None = None):
    """A plain Django JSON error (for views outside DRF, such as the event streams)."""
    return JsonResponse(error_body(code, message, fields), status=status_code)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field.sub": ["message", ...]}``."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == "non_field_errors" and prefix:
                name = prefix  # an error about the whole nested value belongs to its field
            elif isinstance(key, int) or str(key).isdigit():
                name = f"{prefix}[{key}]"  # list items, the same spelling the services use
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten(value, name))
        return fields
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        fields = {}
        for index, item in enumerate(detail):
            if item:
                fields.update(_flatten(item, f"{prefix}[{index}]" if prefix else str(index)))
        return fields
    return {prefix or "non_field_errors": [str(detail)]}


def _validation_response(exc: exceptions.ValidationError) -> Response:
    fields = _flatten(exc.detail)
    first_field, messages = next(iter(fields.items()), ("", ["Invalid request."]))
    message = messages[0] if first_field == "non_field_errors" else f"{first_field}: {messages[0]}"
    return Response(error_body("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)


def _runtime_error_response(exc: Exception) -> Response | None:
    """Errors raised by the runtime's services, if ``exc`` is one of them."""
    if isinstance(exc, RunInputError) and getattr(exc, "status", None):
        # a visitor refused by the agent's widget channel (runtime/channels/admission.py)
        response = Response(error_body(exc.code, exc.message), status=exc.status)
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, RunInputError):
        field = str(getattr(exc, "field", "") or "non_field_errors")
        message = str(getattr(exc, "message", "") or exc)
        code = str(getattr(exc, "code", "") or "invalid")
        return Response(
            error_body(code, f"{field}: {message}", {field: [message]}), status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, RunAlreadyFinished):
        return Response(
            error_body("run_finished", str(exc) or "The run has already finished."),
            status=status.HTTP_409_CONFLICT,
        )
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF ``EXCEPTION_HANDLER``: every error as the JSON error body."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(exc)
    if isinstance(exc, exceptions.APIException):
        code = _CODES.get(type(exc)) or next(
            (value for klass, value in _CODES.items() if isinstance(exc, klass)), None
        )
        code = code or str(exc.default_code or "error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response = Response(error_body(code, str(detail)), status=exc.status_code)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            response["Retry-After"] = str(int(exc.wait))
        return response

    runtime_response = _runtime_error_response(exc)
    if runtime_response is not None:
        return runtime_response
    if database_unavailable(exc):
        logger.warning("Database unavailable in %s: %s", type(context.get("view")).__name__, exc)
        return database_unavailable_response(Response)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body(
                "request_too_large",
                f"The request body is larger than {limit // 1024} KB; send less data in one request.",
            ),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DataError):
        # A value PostgreSQL cannot store (a NUL character in text or JSON, a number out of
        # range): the request's fault, not ours; the statement wrote nothing.
        logger.info("Refused a value the database cannot store: %s", exc)
        return Response(
            error_body(
                "invalid",
                "A value in the request cannot be stored (for example a NUL character, \\u0000). "
                "Remove it and send the request again.",
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )

    view = context.get("view")
    logger.exception("Unhandled error in %s", type(view).__name__ if view else "API view")
    return Response(
        error_body("server_error", "Something went wrong on our side; the error has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _is_api(request: Any) -> bool:
    return request.path.startswith("/api/")


def not_found(request: Any, exception: Exception | None = None):
    """``handler404``: JSON under /api/, Django's page elsewhere."""
    if _is_api(request):
        return error_response(404, "not_found", "There is no API endpoint at this address; see /api/docs/.")

    return page_not_found(request, exception)


def server_error(request: Any):
    """``handler500``: JSON under /api/ (the traceback is already in the log), Django's page elsewhere."""
    if _is_api(request):
        return error_response(
            500, "server_error", "Something went wrong on our side; the error has been logged."
        )

    return page_server_error(request)
