import os

from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# The web process reuses connections: /api/ runs on a fixed pool of threads (runtime/api/asgi.py),
# so at most AGENT_API_THREADS stay open; a new connection per request cost ~8x the latency at 50 runs/s.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")

from config.limits import BodyLimitASGI  # noqa: E402
from runtime.api.asgi import get_api_asgi_application  # noqa: E402 - needs the settings module

# Django's handler, except that /api/ requests take one pooled-thread hop instead of ~30
# (see runtime/api/asgi.py); bodies over REQUEST_MAX_BYTES are refused before they are read.
application = BodyLimitASGI(get_api_asgi_application())

if settings.DEBUG or os.environ.get("SERVE_STATIC") == "1":
    # uvicorn serves no static files; in development Django's handler does.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
