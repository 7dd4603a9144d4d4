"""The OpenAI-compatible endpoint: ``GET /v1/models`` and ``POST /v1/chat/completions``.

``model`` is an agent key the API key may use; the agent's published version answers with
its own prompt, model and tools. A completion is an ordinary run: created by
``run_create`` (through the daily budget, ``budget.reserve_for_run``), queued, executed by the
``runagent`` workers and listed with every other run; this module only follows its events
(``follow.run_events``) and writes them in OpenAI's shapes.

How ``messages`` become the run's input: ``openai_messages``. Errors, in OpenAI's shape:
``openai_errors``. Sampling parameters (``temperature``, ``max_tokens``, ``tools``...) are
ignored: the agent's own settings apply.

The completions view is sync and served, like ``/api/``, on the API's small pool of threads
(runtime/api/asgi.py): the database work before the run starts (authentication, limits, the
run's insert) takes one hop, on threads that keep their connections. Waiting for the run
holds no thread and no connection: a streamed answer is an async body, a whole answer is
finished on the event loop (``finish_async``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from runtime import access, conf, registry
from runtime.api.parsers import SafeJSONParser
from runtime.channels.api_key_models import ApiKey
from runtime.channels.auth import ApiKeyAuthentication, ApiKeyRateThrottle, api_key_of
from runtime.channels.budget import reserve_for_run, settle_run
from runtime.channels.follow import RunEvent, run_events
from runtime.channels.openai_errors import OpenAIError, exception_handler, from_exception, model_not_found
from runtime.channels.openai_messages import split_messages
from runtime.models import AgentRun
from runtime.services import RunAlreadyFinished, RunInputError, run_cancel, run_create
from runtime.streaming.listener import current_listener

logger = logging.getLogger("runtime.channels")

FAILED_TERMINALS = {"run.failed", "run.timed_out", "run.cancelled"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# -- GET /v1/models ----------------------------------------------------------------------------


class HasApiKey(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        if api_key_of(request) is None:
            raise exceptions.NotAuthenticated()
        return True


def usable_agents(key: ApiKey) -> list[str]:
    """The agents the key names that exist and are published (code agents always are)."""
    return [k for k in key.agent_keys if registry.agent_exists(k) and access.may_run_published(k)]


class ModelList(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyRateThrottle]

    def get_exception_handler(self):  # noqa: D102 - DRF hook
        return exception_handler

    @extend_schema(
        summary="OpenAI-compatible: the published agents this API key may use, as models",
        responses=inline_serializer(
            "OpenAIModelList",
            {
                "object": serializers.CharField(default="list"),
                "data": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        key = api_key_of(request)
        assert key is not None
        created = int(key.created_at.timestamp())
        data = [
            {"id": k, "object": "model", "created": created, "owned_by": "agent-builder"}
            for k in usable_agents(key)
        ]
        return Response({"object": "list", "data": data})


# -- POST /v1/chat/completions -----------------------------------------------------------------

_executor = ThreadPoolExecutor(
    max_workers=conf.setting("AGENT_API_THREADS") or int(os.environ.get("AGENT_API_THREADS") or 8),
    thread_name_prefix="openai-compat",
)


def _pooled(fn: Any) -> Any:
    """``fn`` on the pool's threads, which keep their database connection like the API's (CONN_MAX_AGE)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False, executor=_executor)


@dataclass(frozen=True)
class Started:
    run_id: str
    model: str
    stream: bool
    include_usage: bool
    read_at: float
    completion_id: str
    created: int


def _start(request: HttpRequest) -> Started:
    """Authenticate, check limits and input, reserve budget, create the run. Raises on refusal."""
    drf_request = Request(request, authenticators=[ApiKeyAuthentication()], parsers=[SafeJSONParser()])
    key = api_key_of(drf_request)  # evaluating .auth authenticates (and raises on a bad key)
    if key is None:
        raise exceptions.NotAuthenticated()
    throttle = ApiKeyRateThrottle()
    if not throttle.allow_request(drf_request, None):
        raise exceptions.Throttled(wait=throttle.wait())
    body = drf_request.data
    if not isinstance(body, dict):
        raise OpenAIError(400, "Send a JSON object.", code="invalid_body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError(400, "model: give the key of an agent, as GET /v1/models lists it.", param="model")
    if model not in key.agent_keys or not (registry.agent_exists(model) and access.may_run_published(model)):
        raise model_not_found(model)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise OpenAIError(400, "stream: use true or false.", code="invalid_value", param="stream")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    history, turn = split_messages(body.get("messages"))
    metadata: dict[str, Any] = {"channel": "openai", "api_key_id": str(key.pk), "api_key_name": key.name}
    if isinstance(body.get("user"), str) and body["user"]:
        metadata["end_user"] = body["user"][:200]
    read_at = time.monotonic()  # before the run exists: the listener vouches for all its events
    try:
        run, _ = reserve_for_run(
            agent_key=model,
            create_run=lambda: run_create(
                agent_key=model,
                messages=turn,
                history=history,
                channel_caller=key.caller,
                metadata=metadata,
            ),
        )
    except RunInputError as exc:
        if exc.code == "unknown_agent":
            raise model_not_found(model) from None
        raise OpenAIError(400, f"{exc.field}: {exc.message}", code="invalid_value", param=exc.field) from None
    return Started(
        run_id=str(run.pk),
        model=model,
        stream=stream,
        include_usage=include_usage,
        read_at=read_at,
        completion_id=f"chatcmpl-{uuid.UUID(str(run.pk)).hex}",
        created=int(time.time()),
    )


def _finish(run_id: str) -> dict[str, Any]:
    """Settle the run's budget reservation and read its usage and outcome."""
    settle_run(run_id=run_id)
    row = (
        AgentRun.objects.filter(pk=run_id)
        .values("status", "error", "prompt_tokens", "completion_tokens")
        .first()
    ) or {"status": "failed", "error": None, "prompt_tokens": 0, "completion_tokens": 0}
    prompt, completion = row["prompt_tokens"], row["completion_tokens"]
    return {
        "status": row["status"],
        "error": row["error"] or {},
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _cancel_abandoned(run_id: str) -> None:
    """The client went away before the answer ended: stop the run, as OpenAI stops generating."""
    close_old_connections()
    try:
        run = AgentRun.objects.filter(pk=run_id).first()
        if run is not None and not run.is_terminal:
            run_cancel(run=run)
    except RunAlreadyFinished:
        pass
    except Exception:
        logger.warning("could not cancel the abandoned run %s", run_id, exc_info=True)
    finally:
        close_old_connections()


def _abandon(run_id: str) -> None:
    # Not awaited: this runs while the response is being torn down (cancelled or closed).
    _executor.submit(_cancel_abandoned, run_id)


_finish_async = _pooled(_finish)


def _run_error(outcome: dict[str, Any], event: RunEvent) -> OpenAIError:
    error = outcome.get("error") or event.payload.get("error") or {}
    code = str(error.get("code") or event.type.removeprefix("run."))
    message = str(error.get("message") or "The agent could not answer.")
    if event.type == "run.timed_out":
        message = "The agent took too long to answer and was stopped."
    elif event.type == "run.cancelled":
        message = "The run was cancelled."
    return OpenAIError(500, message, type="server_error", code=code)


def _chunk(started: Started, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {
        "id": started.completion_id,
        "object": "chat.completion.chunk",
        "created": started.created,
        "model": started.model,
        "system_fingerprint": None,
        "choices": choices,
        **extra,
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _delta(started: Started, text: str) -> bytes:
    return _chunk(
        started, [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]
    )


def _final_response(event: RunEvent) -> str | None:
    """An agent that neither streamed nor emitted a message: its ``final_output["response"]``."""
    output = event.payload.get("output")
    response = output.get("response") if isinstance(output, dict) else None
    return response if isinstance(response, str) and response else None


def _text_of_event(event: RunEvent, sent_text: bool) -> str | None:
    """The text an event adds to the answer: deltas, or a whole message from an agent that does not stream."""
    if event.type == "assistant.delta":
        delta = event.payload.get("delta")
        return delta if isinstance(delta, str) and delta else None
    if event.type == "assistant.message" and not sent_text:
        content = event.payload.get("content")
        return content if isinstance(content, str) and content else None
    return None


async def _stream(started: Started):
    """The chunks of a streamed completion; a client that leaves before the end cancels its run."""
    ended = False
    try:
        async for frame in _stream_frames(started):
            if frame is _END:
                ended = True
                continue
            yield frame
    finally:
        if not ended:
            _abandon(started.run_id)


_END = object()


async def _stream_frames(started: Started):
    yield _chunk(
        started,
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
    )
    streamed = False  # deltas came: whole messages repeat them
    shown = False  # some text went to the client
    async for event in run_events(started.run_id, read_at=started.read_at):
        if event is None:
            yield b": keep-alive\n\n"
            continue
        text = _text_of_event(event, streamed)
        if text is not None:
            streamed = streamed or event.type == "assistant.delta"
            shown = True
            yield _delta(started, text)
            continue
        if event.type == "run.retrying" and shown:
            # Streamed text cannot be taken back; the client asks again rather than read two answers.
            error = OpenAIError(
                500,
                "The agent was interrupted mid-answer and is retrying; send the request again.",
                type="server_error",
                code="run_retrying",
            )
            yield b"data: " + json.dumps(error.body).encode() + b"\n\n"
            yield _END  # the run goes on (its retry); the client was told to ask again
            return
        if event.type == "run.succeeded":
            if not shown and (response := _final_response(event)):
                yield _delta(started, response)
            outcome = await _finish_async(started.run_id)
            final = [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
            yield _chunk(started, final, usage=outcome["usage"])
            if started.include_usage:
                yield _chunk(started, [], usage=outcome["usage"])
            yield _END
            yield b"data: [DONE]\n\n"
            return
        if event.type in FAILED_TERMINALS:
            outcome = await _finish_async(started.run_id)
            yield _END
            yield b"data: " + json.dumps(_run_error(outcome, event).body).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
            return


async def _complete(started: Started) -> JsonResponse:
    """Wait for the run's end; a client that leaves first (its request is cancelled) cancels the run."""
    try:
        return await _complete_run(started)
    except BaseException:
        _abandon(started.run_id)
        raise


async def _complete_run(started: Started) -> JsonResponse:
    parts: list[str] = []
    sent_text = False
    async for event in run_events(started.run_id, read_at=started.read_at):
        if event is None:
            continue
        text = _text_of_event(event, sent_text)
        if text is not None:
            sent_text = sent_text or event.type == "assistant.delta"
            parts.append(text)
        elif event.type == "run.retrying":
            parts, sent_text = [], False  # the next attempt answers from scratch
        elif event.type == "run.succeeded" or event.type in FAILED_TERMINALS:
            outcome = await _finish_async(started.run_id)
            if event.type != "run.succeeded":
                return _run_error(outcome, event).response()
            if not parts and (response := _final_response(event)):
                parts = [response]
            body = {
                "id": started.completion_id,
                "object": "chat.completion",
                "created": started.created,
                "model": started.model,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts), "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": outcome["usage"],
            }
            return JsonResponse(body)
    return OpenAIError(500, "The run ended without an outcome.", type="server_error").response()


FINISH_ON_LOOP = "agent_runtime.finish_on_loop"  # request.META flag set by runtime/api/asgi.py


def _completion_response(request: HttpRequest, started: Started) -> HttpResponse:
    """The non-streamed answer, which exists only once the run has ended.

    Served by the API's ASGI handler (runtime/api/asgi.py), the view returns at once with a
    placeholder the handler finishes on the event loop (``finish_async``), so no thread waits
    for the run. Anywhere else (WSGI, Django's own handlers) this thread waits for it.
    """
    if request.META.get(FINISH_ON_LOOP):
        placeholder = HttpResponse(status=202)
        placeholder.finish_async = lambda: _complete(started)
        return placeholder
    return async_to_sync(_on_own_loop(_complete))(started)


def _on_own_loop(func: Any) -> Any:
    """``func`` on an event loop made for this one call: its event listener (and the listener's
    database connections) is closed when the call ends, with the loop."""

    async def call(*args: Any) -> Any:
        try:
            return await func(*args)
        finally:
            listener = current_listener()
            if listener is not None and listener.loop is asyncio.get_running_loop():
                await listener.close()

    return call


async def _stream_on_own_loop(started: Started):
    # WSGI: Django reads an async body on a loop of its own (buffered); close its listener after.

    try:
        async for frame in _stream(started):
            yield frame
    finally:
        listener = current_listener()
        if listener is not None and listener.loop is asyncio.get_running_loop():
            await listener.close()


@csrf_exempt
def chat_completions(request: HttpRequest) -> HttpResponse:
    """A sync view: under runtime/api/asgi.py it runs in one hop on the API's thread pool, which
    keeps its database connections; the answer is then streamed or finished on the event loop."""
    if request.method != "POST":
        return OpenAIError(405, "Use POST.", code="method_not_allowed").response()
    try:
        started = _start(request)
    except Exception as exc:
        return from_exception(exc).response()
    if started.stream:
        body = _stream(started) if isinstance(request, ASGIRequest) else _stream_on_own_loop(started)
        response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
        for name, value in SSE_HEADERS.items():
            response[name] = value
    else:
        response = _completion_response(request, started)
    response["X-Agent-Run-Id"] = started.run_id
    return response
