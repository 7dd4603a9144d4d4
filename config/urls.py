from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The builder owns "/" and is mounted last so /admin/ and /api/ win.
    path("", include("builder.urls")),
]
