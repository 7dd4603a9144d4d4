import os

from config.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Several test sessions may share the embedded server; each gets its own database.
DATABASES["default"]["TEST"] = {"NAME": f"test_agents_{os.getpid()}"}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Agents the test-suite runs (workers started by tests import them too).
DJANGO_AGENT_RUNTIME["RUNTIME_REGISTRY"] = [  # noqa: F405
    *DJANGO_AGENT_RUNTIME["RUNTIME_REGISTRY"],  # noqa: F405
    "tests.agents:register_agents",
]
AGENT_RETRY_BACKOFF_BASE = 0.05
# Workers started by tests log each run state change; tests read those lines.
LOGGING["loggers"]["runtime"] = {"level": "INFO"}  # noqa: F405
# Tests embed with the deterministic hash embedder unless a test picks another model.
RAG_DEFAULT_EMBEDDING_MODEL = "hash"
RAG_EMBEDDING_MODELS = {  # noqa: F405
    **RAG_EMBEDDING_MODELS,  # noqa: F405
    "gated": {"backend": "tests.rag.gated.GatedEmbedder", "dimensions": 256, "label": "Gated (tests)"},
}
# Live servers started by browser tests write emails (invitations) as files a test can read;
# pytest-django itself switches the test process to the in-memory backend.
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "test-mail"))},  # noqa: F405
    }
}
