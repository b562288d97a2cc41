"""Settings, all read from the environment.

With nothing set, the product runs on one machine with nothing installed: a
SQLite file, an in-process channel layer and an in-process Celery broker whose
worker runs inside the server process. `DATABASE_URL` and `REDIS_URL` switch to
PostgreSQL and Redis (broker, result backend, channel layer, cache), with
workers in their own processes.
"""

import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from chatbot.environment import (
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_path,
    env_rate,
    env_rates,
    env_redis_url,
    env_str,
    local_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
MIN_SECRET_KEY_LENGTH = 50

DEBUG = env_bool("DEBUG", default=False)

# --- Security: the secret key (issue 13) ---------------------------------------
SECRET_KEY = env_str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(or DEBUG=1 for a local, insecure development run)."
        )
    # A debug run without a key (make run) gets a random one made once per install
    # and kept in var/, never a key that every copy of the code shares.
    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")
if len(SECRET_KEY) < MIN_SECRET_KEY_LENGTH:
    raise ImproperlyConfigured(
        f"SECRET_KEY is too short ({len(SECRET_KEY)} characters; at least {MIN_SECRET_KEY_LENGTH}). "
        "Set SECRET_KEY to python3 -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
# --- End of security: the secret key ---------------------------------------------

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# Origins of the sites that embed the widget: CORS for the session API and the
# websocket's Origin check (cross-site websocket hijacking).
WIDGET_ORIGINS = env_list("WIDGET_ORIGINS", default=[])
for _origin in WIDGET_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"WIDGET_ORIGINS entry {_origin!r} is not an origin. "
            "Set WIDGET_ORIGINS to a comma list like https://shop.example,https://www.shop.example."
        )

INSTALLED_APPS = [
    "chatbot.admin_config.StaffAdminConfig",  # django.contrib.admin with optional TOTP for staff
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "channels",
    "chatbot.nlu",
    "chatbot.conversations",
    "chatbot.agents",
    "chatbot.replies",
    "chatbot.modelops",  # the model-version lifecycle shared by every model kind, and its audit trail
    "chatbot.demo",  # the demo store's first run
    "chatbot.knowledge",  # the help center: articles, passages, the knowledge index
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatbot.urls"
ASGI_APPLICATION = "chatbot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
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

# --- Data -------------------------------------------------------------------

DATABASES = {
    "default": env_database("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'chatbot.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Worker threads and the server write to one file. IMMEDIATE takes the
    # write lock when a transaction begins, so a second writer waits for it
    # (up to the timeout) instead of failing with "database is locked" when
    # its deferred transaction tries to upgrade; WAL lets readers run beside it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20, transaction_mode="IMMEDIATE", init_command="PRAGMA journal_mode=WAL;"
    )
    # A file, not memory, for the test database, so the server processes that
    # the end-to-end tests start can open the same one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A connection pool per process (Django's psycopg pool): opening a PostgreSQL
    # connection per task or websocket frame costs more than the queries do, and
    # CONN_MAX_AGE leaks connections under ASGI. 0 turns the pool off.
    DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", default=10, minimum=0, unit="connections (0: no pool)")
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": 10,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_redis_url("REDIS_URL")
EMBEDDED = not REDIS_URL

if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "chatbot.realtime.EmbeddedChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 times reads out after 5 s by default, exactly the layer's
            # blocking-pop time: give the socket more than that.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1000, "expiry": 60},
        }
    }
    CACHES = {"default": {"BACKEND": "chatbot.ops.redis_cache.RedisCache", "LOCATION": REDIS_URL}}

# --- Celery -----------------------------------------------------------------

# With a host named: kombu warns "No hostname was supplied" at every start otherwise.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task that is still unacknowledged after this many seconds (its worker
# died) is given to another worker: it must be above the longest task, training.
# (The fault tests set a few seconds, so a killed worker's task comes back at once.)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", default=7200, minimum=2, unit="seconds")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Look for tasks whose worker died every quarter of the timeout (at most a
    # minute), instead of kombu's default of about 100 s whatever the timeout.
    "unacked_restore_interval": max(1, min(60, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
}
if EMBEDDED:
    # The in-process broker is polled: poll often so a reply is not held back.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.005
CELERY_TRAINING_TIME_LIMIT = env_int(
    "CELERY_TRAINING_TIME_LIMIT",
    default=max(1, CELERY_VISIBILITY_TIMEOUT - 60),
    minimum=1,
    maximum=CELERY_VISIBILITY_TIMEOUT - 1,
    unit="seconds (below CELERY_VISIBILITY_TIMEOUT, or a running training is handed to a second worker)",
)

# --- Product behaviour ------------------------------------------------------

MODEL_DIR = env_path("MODEL_DIR", default=VAR_DIR / "models")
INTENT_CONFIDENCE_THRESHOLD = env_float("INTENT_CONFIDENCE_THRESHOLD", default=0.5, minimum=0.0, maximum=1.0)
# Fallbacks in a row before the conversation is handed to a person (1 = at once).
HANDOFF_AFTER_FALLBACKS = env_int("HANDOFF_AFTER_FALLBACKS", default=2, minimum=1)
RATE_LIMIT_MESSAGES = env_int("RATE_LIMIT_MESSAGES", default=10, minimum=1)
RATE_LIMIT_WINDOW_S = env_int("RATE_LIMIT_WINDOW_S", default=10, minimum=1, unit="seconds")
MAX_MESSAGE_CHARS = 2000
# An agent whose dashboard has not been heard from for this long counts as offline.
AGENT_PRESENCE_TTL_S = env_int("AGENT_PRESENCE_TTL_S", default=60, minimum=5, unit="seconds")
WS_AUTH_TIMEOUT_S = env_float("WS_AUTH_TIMEOUT_S", default=10.0, minimum=0.1, unit="seconds")
INFERENCE_THREADS = env_int("INFERENCE_THREADS", default=0, minimum=0, unit="(0: all cores)") or None
INFERENCE_DEVICE = env_str("INFERENCE_DEVICE", default="") or None
if INFERENCE_DEVICE is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", INFERENCE_DEVICE):
    raise ImproperlyConfigured(f"INFERENCE_DEVICE={INFERENCE_DEVICE!r} is not a device. Set it to cpu, cuda or cuda:N.")

# --- Knowledge-base answers (issue 16) -----------------------------------------

# Build a new knowledge index (and activate it past the guard) when published
# articles change, this many seconds after the first change (changes meanwhile join it).
KNOWLEDGE_AUTO_REBUILD = env_bool("KNOWLEDGE_AUTO_REBUILD", default=True)
KNOWLEDGE_REBUILD_DELAY_S = env_int("KNOWLEDGE_REBUILD_DELAY_S", default=30, minimum=0, unit="seconds")
# Labelled questions (CSV question,article_id) the abstention threshold is chosen on;
# questions about articles the help center lacks are left out. Default: the demo's dev set.
KNOWLEDGE_QUESTIONS = env_path(
    "KNOWLEDGE_QUESTIONS", default=BASE_DIR / "chatbot" / "knowledge" / "demo" / "dev_questions.csv"
)
# The threshold when too few labelled questions fit the help center (the demo's, chosen by the rule).
KNOWLEDGE_DEFAULT_THRESHOLD = env_float("KNOWLEDGE_DEFAULT_THRESHOLD", default=0.774)
# A new index is refused activation if hit@1 falls, or answered-wrong rises, by more than this.
KNOWLEDGE_MAX_REGRESSION = env_float("KNOWLEDGE_MAX_REGRESSION", default=0.05, minimum=0.0, maximum=1.0)
# Fine-tune the encoder on the visitors' helpful question -> article pairs at each index
# build (off by default); a fifth of the pairs is held out for the regression guard.
KNOWLEDGE_FINE_TUNE = env_bool("KNOWLEDGE_FINE_TUNE", default=False)
KNOWLEDGE_FINE_TUNE_MIN_PAIRS = env_int("KNOWLEDGE_FINE_TUNE_MIN_PAIRS", default=40, minimum=10, unit="pairs")

# --- Review, retraining and model versions ------------------------------------

# Answers above INTENT_CONFIDENCE_THRESHOLD but below this one still go to the
# review inbox (Feedback "low_confidence").
REVIEW_CONFIDENCE_THRESHOLD = env_float("REVIEW_CONFIDENCE_THRESHOLD", default=0.75, minimum=0.0, maximum=1.0)
# Order ids are masked as "[order_id]" before visitor text becomes training data.
PII_ORDER_ID_PATTERN = env_str("PII_ORDER_ID_PATTERN", default=r"\bNW-?\d{6}\b")
try:
    re.compile(PII_ORDER_ID_PATTERN)
except re.error as exc:
    raise ImproperlyConfigured(
        f"PII_ORDER_ID_PATTERN is not a valid regular expression ({exc}). Set it like \\bNW-?\\d{{6}}\\b."
    ) from exc
# Share of training examples held out for evaluation (by a hash of the text).
HOLDOUT_PERCENT = env_int("HOLDOUT_PERCENT", default=20, minimum=1, maximum=99, unit="percent")
# A new version is refused activation if any intent's F1 falls by more than this.
ACTIVATION_MAX_F1_DROP = env_float("ACTIVATION_MAX_F1_DROP", default=0.05, minimum=0.0, maximum=1.0)
# ...judged only for intents with at least this many held-out examples (below it,
# one example moves F1 by more than the margin); all intents count in macro-F1.
ACTIVATION_MIN_SUPPORT = env_int("ACTIVATION_MIN_SUPPORT", default=10, minimum=1, unit="held-out examples")
# Extra inference.TrainConfig fields for every training run (tests make it smaller).
NLU_TRAIN_OPTIONS: dict = {}
# --- Reply suggestions for agents (docs/replies.md) ------------------------------

# Which active reply model suggests: "best" (the higher held-out BLEU, else whichever
# is active), "seq2seq", "retrieval", or "both" (each shows its own suggestions).
REPLY_SUGGESTIONS_SOURCE = env_str(
    "REPLY_SUGGESTIONS_SOURCE", default="best", choices=("best", "seq2seq", "retrieval", "both"), lower=True
)
REPLY_SUGGESTIONS_N = env_int("REPLY_SUGGESTIONS_N", default=3, minimum=1, maximum=10)
# After this many new agent replies (counted when an agent closes a conversation),
# both reply models retrain on everything agents wrote and activate when ready, so
# suggestions learn from the agents' own answers. 0 turns it off (admin only).
REPLY_RETRAIN_AFTER_REPLIES = env_int(
    "REPLY_RETRAIN_AFTER_REPLIES", default=10, minimum=0, unit="agent replies (0: never)"
)
# A suggestion later than this is useless to an agent: the task gives up and shows none.
REPLY_SUGGESTION_TIMEOUT_S = env_float("REPLY_SUGGESTION_TIMEOUT_S", default=5.0, minimum=0.1, unit="seconds")
# Extra inference.replies.ReplyTrainConfig fields for every reply training run (tests make it smaller).
REPLY_TRAIN_OPTIONS: dict = {}
# A new reply version is refused activation (automatic retraining included) if its
# held-out BLEU is more than this many points below the active version's on the same pairs.
REPLY_ACTIVATION_MAX_BLEU_DROP = env_float(
    "REPLY_ACTIVATION_MAX_BLEU_DROP", default=2.0, minimum=0.0, unit="BLEU points"
)
# Automatic retraining activates a reply version only when it was scored on held-out
# replies and reached at least this BLEU there (docs/benchmarks.md: 3.8-6 on SGD);
# otherwise it stays ready for a person to activate (or force).
REPLY_AUTO_ACTIVATION_MIN_BLEU = env_float(
    "REPLY_AUTO_ACTIVATION_MIN_BLEU", default=1.0, minimum=0.0, unit="BLEU points"
)

# Retrain every night (celery beat) when reviewers accepted new feedback.
NIGHTLY_RETRAIN = env_bool("NIGHTLY_RETRAIN", default=True)
NIGHTLY_RETRAIN_HOUR = env_int("NIGHTLY_RETRAIN_HOUR", default=3, minimum=0, maximum=23, unit="(hour of the day, UTC)")
# One scheduler per deployment: `serve` runs it (a thread when embedded, a process
# beside the workers otherwise); docker compose runs it as the `beat` service.
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE_FILENAME = str(env_path("CELERY_BEAT_SCHEDULE_FILENAME", default=VAR_DIR / "celerybeat-schedule"))
if NIGHTLY_RETRAIN:
    from celery.schedules import crontab

    CELERY_BEAT_SCHEDULE = {
        "nightly-retrain": {
            "task": "chatbot.nlu.tasks.retrain_if_feedback",
            "schedule": crontab(hour=NIGHTLY_RETRAIN_HOUR, minute=0),
        }
    }


# --- HTTP -------------------------------------------------------------------

# Where `manage.py serve` listens unless --host / --port say otherwise.
HOST = env_str("HOST", default="127.0.0.1")
PORT = env_int("PORT", default=8000, minimum=1, maximum=65535)

CORS_ALLOWED_ORIGINS = WIDGET_ORIGINS
CORS_URLS_REGEX = r"^/api/widget/.*$"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env_str("LOG_LEVEL", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"routine_at_debug": {"()": "chatbot.ops.logs.RoutineAtDebug"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The scheduler's ticks and the sweep's every-5-s receipt and success: DEBUG (chatbot/ops/logs.py).
    "loggers": {
        name: {"filters": ["routine_at_debug"]}
        for name in (
            "celery.beat",
            "celery.worker.strategy",
            "celery.app.trace",
            "celery.worker.consumer.connection",
        )
    },
}

# --- REST API and webhooks (docs/api.md) ---------------------------------------

INSTALLED_APPS += ["ninja", "chatbot.api", "chatbot.webhooks"]
# Logs every /api/v1/ call and answers its errors as problem documents.
MIDDLEWARE += ["chatbot.api.middleware.ApiCallLogMiddleware"]
# Calls per token (django-ratelimit, on the shared cache): "600/m", "50/s", "10000/h".
API_RATE_LIMIT = env_str("API_RATE_LIMIT", default="600/m")
if not re.fullmatch(r"\d+/\d*[smhd]", API_RATE_LIMIT):
    raise ImproperlyConfigured(f"API_RATE_LIMIT {API_RATE_LIMIT!r} is not a rate. Set it like 600/m or 50/s.")
API_CALL_LOG = env_bool("API_CALL_LOG", default=True)
# Call-log rows older than this are deleted every night (idempotency keys after a day).
API_CALL_LOG_DAYS = env_int("API_CALL_LOG_DAYS", default=90, minimum=1, unit="days")
WEBHOOK_TIMEOUT_S = env_float("WEBHOOK_TIMEOUT_S", default=10.0, minimum=0.5, maximum=60.0, unit="seconds")
# Failed deliveries (timeouts, connection errors, 5xx, 429) are retried for this long...
WEBHOOK_RETRY_FOR_S = env_int("WEBHOOK_RETRY_FOR_S", default=86400, minimum=0, unit="seconds")
# ...after base·2^(n-1) seconds (with jitter), at most WEBHOOK_RETRY_MAX_DELAY_S apart.
WEBHOOK_RETRY_BASE_S = env_float("WEBHOOK_RETRY_BASE_S", default=30.0, minimum=0.01, unit="seconds")
# A delayed task held longer than the visibility timeout would be delivered twice by Redis.
WEBHOOK_RETRY_MAX_DELAY_S = env_float(
    "WEBHOOK_RETRY_MAX_DELAY_S",
    default=min(3600.0, CELERY_VISIBILITY_TIMEOUT / 2),
    minimum=0.01,
    maximum=CELERY_VISIBILITY_TIMEOUT - 1,
    unit="seconds (below CELERY_VISIBILITY_TIMEOUT)",
)
# A subscription whose events failed this many times in a row is disabled and admins get an email (0: never).
WEBHOOK_DISABLE_AFTER_FAILURES = env_int(
    "WEBHOOK_DISABLE_AFTER_FAILURES", default=10, minimum=0, unit="failed events in a row (0: never)"
)
# Off: webhook URLs resolving to loopback, private or link-local addresses are refused (SSRF).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
CELERY_BEAT_SCHEDULE["webhook-retry-sweep"] = {
    "task": "chatbot.webhooks.tasks.retry_due_deliveries",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["api-purge"] = {"task": "chatbot.api.tasks.purge_old_records", "schedule": 86400.0}

# --- Security and privacy (issue 13; docs/security.md, docs/privacy.md) ---------

from csp.constants import NONCE, NONE, SELF  # noqa: E402

INSTALLED_APPS += ["axes", "chatbot.audit", "chatbot.privacy", "django_otp", "django_otp.plugins.otp_totp"]
# Optional TOTP for staff (chatbot/admin_site.py): marks sessions verified by a code.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
# A Content-Security-Policy on every page (dashboard, admin, demo); axes last, as it asks.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.clickjacking.XFrameOptionsMiddleware"), "csp.middleware.CSPMiddleware"
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

# HTTPS, on by default when DEBUG is off. TLS ends at the reverse proxy
# (docs/security.md): it must set X-Forwarded-Proto and drop the client's.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container's own plain-HTTP health check
if env_bool("TRUST_X_FORWARDED_PROTO", default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, minimum=0, unit="seconds (0: no HSTS header)"
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# `serve` refuses DEBUG on any host but loopback unless this says yes: a debug page
# shows settings and code to whoever reaches it.
DEBUG_ON_PUBLIC_HOST = env_bool("DEBUG_ON_PUBLIC_HOST", default=False)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        # The admin and the widget set style attributes; scripts stay strict.
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Logins (/agent/login/ and /admin/login/): django-axes locks a user name out from
# one address after LOGIN_FAILURE_LIMIT wrong passwords, for LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", default=5, minimum=1, unit="failed logins")
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", default=15, minimum=1, unit="minutes") / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "security/locked_out.html"

# Uploads: a request body (form fields) or an in-memory file larger than this is
# refused or spooled to disk; the training-data import stops reading past its limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_MB", default=20, minimum=1, unit="MB") * 1024 * 1024

# Signed visitor identity: the embedding site sends user_hash = HMAC-SHA256 of
# "user_id:email" with this secret (docs/widget.md); without it identity is unverified.
IDENTITY_VERIFICATION_SECRET = env_str("IDENTITY_VERIFICATION_SECRET", default="")

# Personal data over time (docs/privacy.md).
VISITOR_TOKEN_TTL_DAYS = env_int("VISITOR_TOKEN_TTL_DAYS", default=30, minimum=1, unit="days")
RETENTION_DAYS = env_int("RETENTION_DAYS", default=365, minimum=0, unit="days (0: keep conversations)")
RETENTION_ACTION = env_str("RETENTION_ACTION", default="anonymise", choices=("anonymise", "delete"), lower=True)
MASK_CARDS_AT_REST = env_bool("MASK_CARDS_AT_REST", default=True)
CELERY_BEAT_SCHEDULE["privacy-retention"] = {
    "task": "chatbot.privacy.tasks.apply_retention",
    "schedule": 24 * 60 * 60,
}
# --- End of security and privacy -------------------------------------------------

# --- Analytics: outcomes, reports, metrics (docs/analytics.md) ---------------------

INSTALLED_APPS.append("chatbot.analytics")
# A conversation neither closed nor touched for this many hours has a final outcome.
ANALYTICS_IDLE_WINDOW_H = env_float("ANALYTICS_IDLE_WINDOW_H", default=24.0, minimum=0.01, unit="hours")
# How often the beat task finalises idle conversations, and at most how many per run.
ANALYTICS_FINALISE_EVERY_S = env_int("ANALYTICS_FINALISE_EVERY_S", default=300, minimum=1, unit="seconds")
ANALYTICS_FINALISE_MAX = env_int("ANALYTICS_FINALISE_MAX", default=50000, minimum=1, unit="conversations")
# Ratings arrive after the close; outcomes this recent are checked for a late one.
ANALYTICS_RATING_LOOKBACK_DAYS = env_int("ANALYTICS_RATING_LOOKBACK_DAYS", default=30, minimum=1, unit="days")
# Day boundaries, hour-of-week and dates on the Reports page are in this zone.
SITE_TIME_ZONE = env_str("SITE_TIME_ZONE", default=TIME_ZONE)
try:
    import zoneinfo

    zoneinfo.ZoneInfo(SITE_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(
        f"SITE_TIME_ZONE {SITE_TIME_ZONE!r} is not a time zone. Set it like Europe/Berlin."
    ) from exc
# Top unanswered questions: messages closer than this cosine distance share a group.
ANALYTICS_CLUSTER_DISTANCE = env_float("ANALYTICS_CLUSTER_DISTANCE", default=0.35, minimum=0.01, maximum=1.99)
# /metrics: with a token, scrapers send "Authorization: Bearer <token>"; without, only this machine may scrape.
METRICS_TOKEN = env_str("METRICS_TOKEN", default="")
CELERY_BEAT_SCHEDULE["analytics-finalise-outcomes"] = {
    "task": "chatbot.analytics.tasks.finalise_outcomes",
    "schedule": float(ANALYTICS_FINALISE_EVERY_S),
}


# --- Reliability: acked means answered (issue 12) --------------------------------
# One block, ported as a whole: recovery of unanswered messages, supervision,
# health thresholds, pools and request limits. docs/deploy.md explains each.

INSTALLED_APPS += ["chatbot.ops"]
# A visitor message with no bot decision this many seconds after it was stored is
# enqueued again by the sweeper (which runs every REPLY_RECOVERY_INTERVAL_S);
# messages older than REPLY_RECOVERY_MAX_AGE_S are left alone (an answer that
# late helps nobody) but still count against /healthz.
REPLY_RECOVERY_AFTER_S = env_float("REPLY_RECOVERY_AFTER_S", default=10.0, minimum=0.1, unit="seconds")
REPLY_RECOVERY_INTERVAL_S = env_float("REPLY_RECOVERY_INTERVAL_S", default=5.0, minimum=0.1, unit="seconds")
REPLY_RECOVERY_MAX_AGE_S = env_int("REPLY_RECOVERY_MAX_AGE_S", default=3600, minimum=1, unit="seconds")
# /healthz answers 503 when a visitor message has waited this long for the bot.
HEALTH_UNANSWERED_MAX_AGE_S = env_float("HEALTH_UNANSWERED_MAX_AGE_S", default=30.0, minimum=1.0, unit="seconds")
# Each worker writes a heartbeat this often; one missing for three beats is dead.
WORKER_HEARTBEAT_S = env_float("WORKER_HEARTBEAT_S", default=5.0, minimum=0.1, unit="seconds")
# Redis connections per server process for the channel layer. The pool waits up
# to REDIS_POOL_TIMEOUT_S for a free connection instead of failing at the cap.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", default=500, minimum=2, unit="connections")
REDIS_POOL_TIMEOUT_S = env_float("REDIS_POOL_TIMEOUT_S", default=10.0, minimum=0.1, unit="seconds")
# Request bodies larger than these are refused with 413 before they are read:
# the widget's API takes a few hundred bytes; the admin imports intent files.
WIDGET_API_MAX_BODY_BYTES = env_int("WIDGET_API_MAX_BODY_BYTES", default=16 * 1024, minimum=256, unit="bytes")
REQUEST_MAX_BODY_BYTES = env_int("REQUEST_MAX_BODY_BYTES", default=32 * 1024 * 1024, minimum=1024, unit="bytes")
# Threads for websocket database work per server process (Channels' default is one).
WS_DATABASE_THREADS = env_int("WS_DATABASE_THREADS", default=8, minimum=1, maximum=64, unit="threads")
if not EMBEDDED:
    # Idle connections are pinged before use (after a Redis restart they are
    # stale), and the pool waits for a free connection instead of failing.
    CHANNEL_LAYERS["default"]["BACKEND"] = "chatbot.ops.channel_layer.PooledRedisChannelLayer"
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0].update(
        max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT_S, health_check_interval=10
    )
    CACHES["default"]["OPTIONS"] = {"health_check_interval": 10}
    CELERY_BROKER_TRANSPORT_OPTIONS["health_check_interval"] = 10
# Check a pooled (or persistent) connection before handing it out: after a
# PostgreSQL restart every pooled connection is dead, and the first query on each
# would fail. With the pool, Django passes psycopg_pool's check_connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CELERY_BEAT_SCHEDULE["recover-unanswered-messages"] = {
    "task": "chatbot.conversations.tasks.recover_unanswered_messages",
    "schedule": REPLY_RECOVERY_INTERVAL_S,
    "options": {"expires": REPLY_RECOVERY_INTERVAL_S},
}
# --- End of the reliability block ---------------------------------------------------

# --- Handoff and the agent inbox (issue 14) -----------------------------------

# Email: the console by default (printed by `make run`); SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST", default="")
EMAIL_PORT = env_int("EMAIL_PORT", default=587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="support@localhost")
# Who hears of an offline message (empty: every agent with an email address).
SUPPORT_TEAM_EMAILS = env_list("SUPPORT_TEAM_EMAILS", default=[])
# "Typically replies in ...": this text when set, else measured (median first response, 14 days).
EXPECTED_REPLY_TEXT = env_str("EXPECTED_REPLY_TEXT", default="")
# Auto-assignment: a waiting conversation goes to the online agent with the fewest
# open conversations (round robin on ties), under AUTO_ASSIGN_LIMIT each. Off by default.
AUTO_ASSIGN = env_bool("AUTO_ASSIGN", default=False)
AUTO_ASSIGN_LIMIT = env_int("AUTO_ASSIGN_LIMIT", default=3, minimum=1, unit="conversations per agent")
# While a visitor waits, at most one "still in the queue" line this often.
QUEUE_REMINDER_INTERVAL_S = env_int("QUEUE_REMINDER_INTERVAL_S", default=180, minimum=10, unit="seconds")
# Reply suggestions scoring below these are not shown (docs/replies.md): retrieval
# scores are cosine similarities, seq2seq scores mean token log-probabilities.
REPLY_RETRIEVAL_MIN_SCORE = env_float("REPLY_RETRIEVAL_MIN_SCORE", default=0.95, minimum=-1.0, maximum=1.0)
REPLY_SEQ2SEQ_MIN_SCORE = env_float("REPLY_SEQ2SEQ_MIN_SCORE", default=-0.72, maximum=0.0)

# --- Abuse limits on the public doors (issue 13; docs/security.md "Limits") -------
# Counted in the shared cache (Redis with REDIS_URL) by django-ratelimit, per client
# address as uvicorn reports it: behind the proxy, X-Forwarded-For from FORWARDED_ALLOW_IPS.
# Rates are COUNT/PERIOD: "10/m", "600/h", "5/30s".

# POST /api/widget/sessions: per address, and for everyone together (what the addresses let through).
SESSION_RATE_PER_IP = env_rate("SESSION_RATE_PER_IP", default="10/m")
SESSION_RATE_GLOBAL = env_rate("SESSION_RATE_GLOBAL", default="1200/m")
# Visitor websocket frames of one address, all kinds together (resent messages not counted),
# and the visitor messages among them: new sessions do not bring a new budget.
WS_RATE_PER_IP = env_rate("WS_RATE_PER_IP", default="600/m")
WS_MESSAGE_RATE_PER_IP = env_rate("WS_MESSAGE_RATE_PER_IP", default="60/m")
# Each frame type per visitor ("user_message" is RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_S).
# The widget stays far below: a ping every 25 s, typing at most every 3 s.
WS_FRAME_RATE_DEFAULTS = {
    "identify": "5/m",
    "feedback": "30/m",
    "article_feedback": "30/m",
    "rating": "5/m",
    "typing": "60/m",
    "handoff_request": "3/m",
    "resume": "30/m",
    "ping": "20/m",
}
WS_FRAME_RATES = env_rates("WS_FRAME_RATES", default=WS_FRAME_RATE_DEFAULTS, keys=list(WS_FRAME_RATE_DEFAULTS))
# Handoff requests of one address, whatever the session: each puts a card on every agent's queue.
HANDOFF_RATE_PER_IP = env_rate("HANDOFF_RATE_PER_IP", default="10/h")
# Sessions (visitor and conversations) that never had a message are deleted this long
# after they were made and their token was last used (celery beat, hourly).
UNUSED_SESSION_TTL_HOURS = env_int("UNUSED_SESSION_TTL_HOURS", default=24, minimum=1, unit="hours")
CELERY_BEAT_SCHEDULE["delete-unused-sessions"] = {
    "task": "chatbot.conversations.tasks.delete_unused_sessions",
    "schedule": 3600.0,
}
# The agents' queue shows at most this many conversations per section, then "N more".
QUEUE_PAGE_SIZE = env_int("QUEUE_PAGE_SIZE", default=25, minimum=1, maximum=500, unit="conversations")
# --- End of the abuse limits ---------------------------------------------------------
