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
    env_redis_url,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(or DEBUG=1 for a local, insecure development run)."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"

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
    "django.contrib.admin",
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
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Celery -----------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL or "memory://"
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
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", default=7200, minimum=60, unit="seconds")
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
    default=CELERY_VISIBILITY_TIMEOUT - 60,
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
KNOWLEDGE_DEFAULT_THRESHOLD = env_float("KNOWLEDGE_DEFAULT_THRESHOLD", default=0.8655)
# A new index is refused activation if hit@1 falls, or answered-wrong rises, by more than this.
KNOWLEDGE_MAX_REGRESSION = env_float("KNOWLEDGE_MAX_REGRESSION", default=0.05, minimum=0.0, maximum=1.0)

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
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
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
WEBHOOK_RETRY_MAX_DELAY_S = env_float("WEBHOOK_RETRY_MAX_DELAY_S", default=3600.0, minimum=0.01, unit="seconds")
if WEBHOOK_RETRY_MAX_DELAY_S >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("WEBHOOK_RETRY_MAX_DELAY_S must be below CELERY_VISIBILITY_TIMEOUT.")
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
