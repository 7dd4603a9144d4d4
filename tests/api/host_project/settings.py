"""A host project as the original package's setup guide builds it: its own REST_FRAMEWORK
defaults, no ``rest_framework.authtoken``, the base view sets mounted directly. The database is
the test database of the calling test (``HOST_DATABASE_URL``)."""

import os

from config.env import database_from_url

SECRET_KEY = "host-project-test-key"  # noqa: S105 - a test project
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "runtime",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.api.host_project.urls"
DATABASES = {"default": database_from_url(os.environ["HOST_DATABASE_URL"])}
USE_TZ = True
DJANGO_AGENT_RUNTIME = {"RUNTIME_REGISTRY": ["tests.agents:register_agents"]}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tests.api.host_project.auth.HostHeaderAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
}
