"""Settings for the SSE benchmarks' uvicorn: the project's, plus a plain stream to compare with."""

from config.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench._sse_urls"
