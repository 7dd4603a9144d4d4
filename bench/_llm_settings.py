"""Settings for the ``llm_*`` end-to-end benchmarks' uvicorn: the project's, plus the plain proxy view."""

from config.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench._llm_urls"
