from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str
from config.settings.base import *  # noqa: F403

DEBUG = False
if not env_str("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production (a long random string).")
if not env_str("DATABASE_URL"):
    raise ImproperlyConfigured("DATABASE_URL must be set in production (a PostgreSQL with pgvector).")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
