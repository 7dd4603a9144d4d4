"""Errors from model calls, each saying whether a retry can help (``retryable``)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


# errors -----------------------------------------------------------------------------------
class LLMError(Exception):
    """A model call failed. ``retryable`` says whether trying again can help."""

    retryable: bool = False
    # the runner shows ``code`` and ``user_message`` to users (never a traceback)
    code: str = "llm_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable

    @property
    def user_message(self) -> str:
        return self.message


class LLMConfigurationError(LLMError):
    """The provider is not set up (no key, unknown provider); fix the settings, do not retry."""

    retryable = False
    code = "llm_not_configured"


class LLMBadRequestError(LLMError):
    """The provider refused the request itself (bad model name, too long, invalid tools)."""

    retryable = False
    code = "llm_bad_request"


class LLMRateLimitError(LLMError):
    retryable = True
    code = "llm_rate_limited"


class LLMServerError(LLMError):
    retryable = True
    code = "llm_server_error"


class LLMTimeoutError(LLMError):
    retryable = True
    code = "llm_timeout"


class LLMConnectionError(LLMError):
    retryable = True
    code = "llm_connection_error"


class LLMStreamInterrupted(LLMError):
    """The stream stopped before the model finished; the partial text was already shown."""

    retryable = True
    code = "llm_stream_interrupted"


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def error_for_status(
    provider: str, status: int, message: str, *, headers: Any = None, key_variable: str = ""
) -> LLMError:
    """The neutral error for an HTTP status from a provider."""
    detail = message.strip() or f"HTTP {status}"
    if status == 429:
        return LLMRateLimitError(
            f"The {provider} provider is rate limiting requests: {detail}",
            provider=provider,
            status_code=status,
            retry_after=parse_retry_after(headers),
        )
    if status in (401, 403):
        hint = f" Check {key_variable}." if key_variable else ""
        return LLMConfigurationError(
            f"The {provider} provider refused the credentials ({status}).{hint}",
            provider=provider,
            status_code=status,
        )
    if status >= 500 or status in (408, 409):
        return LLMServerError(
            f"The {provider} provider had a server error ({status}): {detail}",
            provider=provider,
            status_code=status,
            retry_after=parse_retry_after(headers),
        )
    return LLMBadRequestError(
        f"The {provider} provider rejected the request ({status}): {detail}",
        provider=provider,
        status_code=status,
    )


# Raw HTTP errors the SDKs let through while a stream is read (a dropped connection).
def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        errors.append(module.HTTPError)
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


def sdk_error(sdk: Any, exc: BaseException, *, provider: str, key_variable: str = "") -> LLMError:
    """The neutral error for an exception of the ``openai`` or ``anthropic`` SDK.

    Both SDKs name their exceptions alike, so ``sdk`` is the module itself.
    """
    if isinstance(exc, sdk.APIStatusError):
        return error_for_status(
            provider,
            exc.status_code,
            getattr(exc, "message", "") or str(exc),
            headers=exc.response.headers,
            key_variable=key_variable,
        )
    if isinstance(exc, sdk.APITimeoutError):
        return LLMTimeoutError(f"The {provider} request timed out.", provider=provider)
    if isinstance(exc, sdk.APIConnectionError):
        return LLMConnectionError(
            f"Could not reach the {provider} server: {exc.__cause__ or exc}", provider=provider
        )
    if isinstance(exc, sdk.APIError):  # an error event inside a stream
        return LLMServerError(f"The {provider} stream reported an error: {exc}", provider=provider)
    return LLMConnectionError(
        f"The connection to the {provider} server broke: {type(exc).__name__}: {exc}", provider=provider
    )
