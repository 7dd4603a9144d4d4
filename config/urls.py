from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from runtime.api.schema import API_SCHEMA_SETTINGS

urlpatterns = [
    path("admin/", admin.site.urls),
    # the knowledge bases of agents and systems (/api/agents/<uuid>/knowledge/, /api/systems/...)
    path("api/", include("builder.api_urls")),
    path("api/agents/", include("runtime.api.urls")),
    path("api/agent-runtime/", include("runtime.api.frontend_urls")),  # agent-frontend's default paths
    path("api/accounts/", include("accounts.urls")),
    path("api/knowledge/", include("rag.urls")),
    path("api/widget/", include("runtime.channels.urls")),
    path("v1/", include("runtime.channels.openai_urls")),  # OpenAI-compatible, API keys (docs/api-keys.md)
    path("api/schema/", SpectacularAPIView.as_view(custom_settings=API_SCHEMA_SETTINGS), name="api-schema"),
    # The split view serves its start-up script as a file: no inline script, so CSP allows it.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # The builder owns "/" and is mounted last so /admin/ and /api/ win.
    path("", include("builder.urls")),
]

# JSON errors under /api/, Django's pages elsewhere.
handler400 = "config.limits.bad_request"  # a body over REQUEST_MAX_BYTES is a 413
handler404 = "runtime.api.errors.not_found"
handler500 = "runtime.api.errors.server_error"
