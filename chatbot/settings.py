"""Settings, all read from the environment.

With nothing set, the product runs on one machine with nothing installed: a
SQLite file, an in-process channel layer and an in-process Celery broker whose
worker runs inside the server process. `DATABASE_URL` and `REDIS_URL` switch to
PostgreSQL and Redis (broker, result backend, channel layer, cache), with
workers in their own processes.
"""

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def _env_or_fail(read, name: str, hint: str, **kwargs):
    """Read one variable; a malformed value stops the start with what to set."""
    try:
        return read(name, **kwargs)
    except (ValueError, environ.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"{name} is not valid ({exc}). {hint}") from exc


def _strict_bool(name: str, default: bool) -> bool:
    """django-environ reads any unknown word as False; a typo should stop the start."""
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a yes/no value. Set {name} to 1 or 0.")


DEBUG = _strict_bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(or DEBUG=1 for a local, insecure development run)."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# Origins of the sites that embed the widget: CORS for the session API and the
# websocket's Origin check (cross-site websocket hijacking).
WIDGET_ORIGINS = env.list("WIDGET_ORIGINS", default=[])
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
    "default": _env_or_fail(
        env.db_url,
        "DATABASE_URL",
        "Set DATABASE_URL like postgres://user:password@host:5432/name.",
        default=f"sqlite:///{VAR_DIR / 'chatbot.sqlite3'}",
    )
}
if not DATABASES["default"].get("ENGINE", "").startswith("django.db.backends."):
    raise ImproperlyConfigured(
        f"DATABASE_URL is not valid (unknown database {DATABASES['default'].get('ENGINE')!r}). "
        "Set DATABASE_URL like postgres://user:password@host:5432/name or sqlite:////path/to/file.sqlite3."
    )
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
    DATABASE_POOL_MAX_SIZE = _env_or_fail(
        env.int, "DATABASE_POOL_MAX_SIZE", "Set it to a number of connections (0: no pool).", default=10
    )
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": 10,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL {REDIS_URL!r} is not a Redis URL. Set REDIS_URL like redis://127.0.0.1:6379/0."
    )
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
CELERY_VISIBILITY_TIMEOUT = _env_or_fail(
    env.int, "CELERY_VISIBILITY_TIMEOUT", "Set it to a number of seconds.", default=7200
)
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
CELERY_TRAINING_TIME_LIMIT = env.int("CELERY_TRAINING_TIME_LIMIT", default=CELERY_VISIBILITY_TIMEOUT - 60)

# --- Product behaviour ------------------------------------------------------

MODEL_DIR = Path(env.str("MODEL_DIR", default=str(VAR_DIR / "models")))
INTENT_CONFIDENCE_THRESHOLD = _env_or_fail(
    env.float, "INTENT_CONFIDENCE_THRESHOLD", "Set it to a number between 0 and 1.", default=0.5
)
if not 0.0 <= INTENT_CONFIDENCE_THRESHOLD <= 1.0:
    raise ImproperlyConfigured("INTENT_CONFIDENCE_THRESHOLD must be between 0 and 1.")
# Fallbacks in a row before the conversation is handed to a person (1 = at once).
HANDOFF_AFTER_FALLBACKS = env.int("HANDOFF_AFTER_FALLBACKS", default=2)
RATE_LIMIT_MESSAGES = env.int("RATE_LIMIT_MESSAGES", default=10)
RATE_LIMIT_WINDOW_S = env.int("RATE_LIMIT_WINDOW_S", default=10)
MAX_MESSAGE_CHARS = 2000
WS_AUTH_TIMEOUT_S = env.float("WS_AUTH_TIMEOUT_S", default=10.0)
INFERENCE_THREADS = env.int("INFERENCE_THREADS", default=0) or None
INFERENCE_DEVICE = env.str("INFERENCE_DEVICE", default="") or None

# --- Review, retraining and model versions ------------------------------------

# Answers above INTENT_CONFIDENCE_THRESHOLD but below this one still go to the
# review inbox (Feedback "low_confidence").
REVIEW_CONFIDENCE_THRESHOLD = _env_or_fail(
    env.float, "REVIEW_CONFIDENCE_THRESHOLD", "Set it to a number between 0 and 1.", default=0.75
)
if not 0.0 <= REVIEW_CONFIDENCE_THRESHOLD <= 1.0:
    raise ImproperlyConfigured("REVIEW_CONFIDENCE_THRESHOLD must be between 0 and 1.")
# Order ids are masked as "[order_id]" before visitor text becomes training data.
PII_ORDER_ID_PATTERN = env.str("PII_ORDER_ID_PATTERN", default=r"\bNW-?\d{6}\b")
try:
    re.compile(PII_ORDER_ID_PATTERN)
except re.error as exc:
    raise ImproperlyConfigured(
        f"PII_ORDER_ID_PATTERN is not a valid regular expression ({exc}). Set it like \\bNW-?\\d{{6}}\\b."
    ) from exc
# Share of training examples held out for evaluation (by a hash of the text).
HOLDOUT_PERCENT = env.int("HOLDOUT_PERCENT", default=20)
if not 0 < HOLDOUT_PERCENT < 100:
    raise ImproperlyConfigured("HOLDOUT_PERCENT must be between 1 and 99.")
# A new version is refused activation if any intent's F1 falls by more than this.
ACTIVATION_MAX_F1_DROP = _env_or_fail(
    env.float, "ACTIVATION_MAX_F1_DROP", "Set it to a number between 0 and 1, like 0.05.", default=0.05
)
# ...judged only for intents with at least this many held-out examples (below it,
# one example moves F1 by more than the margin); all intents count in macro-F1.
ACTIVATION_MIN_SUPPORT = env.int("ACTIVATION_MIN_SUPPORT", default=10)
# Extra inference.TrainConfig fields for every training run (tests make it smaller).
NLU_TRAIN_OPTIONS: dict = {}
# --- Reply suggestions for agents (docs/replies.md) ------------------------------

# Which active reply model suggests: "best" (the higher held-out BLEU, else whichever
# is active), "seq2seq", "retrieval", or "both" (each shows its own suggestions).
REPLY_SUGGESTIONS_SOURCE = env.str("REPLY_SUGGESTIONS_SOURCE", default="best").strip().lower()
if REPLY_SUGGESTIONS_SOURCE not in ("best", "seq2seq", "retrieval", "both"):
    raise ImproperlyConfigured("REPLY_SUGGESTIONS_SOURCE must be best, seq2seq, retrieval or both.")
REPLY_SUGGESTIONS_N = env.int("REPLY_SUGGESTIONS_N", default=3)
# After this many new agent replies (counted when an agent closes a conversation),
# both reply models retrain on everything agents wrote and activate when ready, so
# suggestions learn from the agents' own answers. 0 turns it off (admin only).
REPLY_RETRAIN_AFTER_REPLIES = _env_or_fail(
    env.int, "REPLY_RETRAIN_AFTER_REPLIES", "Set it to a number of agent replies (0: never).", default=10
)
# A suggestion later than this is useless to an agent: the task gives up and shows none.
REPLY_SUGGESTION_TIMEOUT_S = _env_or_fail(
    env.float, "REPLY_SUGGESTION_TIMEOUT_S", "Set it to a number of seconds, like 5.", default=5.0
)
# Extra inference.replies.ReplyTrainConfig fields for every reply training run (tests make it smaller).
REPLY_TRAIN_OPTIONS: dict = {}

# Retrain every night (celery beat) when reviewers accepted new feedback.
NIGHTLY_RETRAIN = _env_or_fail(env.bool, "NIGHTLY_RETRAIN", "Set NIGHTLY_RETRAIN to 1 or 0.", default=True)
NIGHTLY_RETRAIN_HOUR = env.int("NIGHTLY_RETRAIN_HOUR", default=3)
# One scheduler per deployment: `serve` runs it (a thread when embedded, a process
# beside the workers otherwise); docker compose runs it as the `beat` service.
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
if NIGHTLY_RETRAIN:
    from celery.schedules import crontab

    CELERY_BEAT_SCHEDULE = {
        "nightly-retrain": {
            "task": "chatbot.nlu.tasks.retrain_if_feedback",
            "schedule": crontab(hour=NIGHTLY_RETRAIN_HOUR, minute=0),
        }
    }


# --- HTTP -------------------------------------------------------------------

CORS_ALLOWED_ORIGINS = WIDGET_ORIGINS
CORS_URLS_REGEX = r"^/api/widget/.*$"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL {LOG_LEVEL!r} is not a level. Set it to DEBUG, INFO, WARNING or ERROR.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}


# --- Reliability: acked means answered (issue 12) --------------------------------
# One block, ported as a whole: recovery of unanswered messages, supervision,
# health thresholds, pools and request limits. docs/deploy.md explains each.

INSTALLED_APPS += ["chatbot.ops"]
# `manage.py serve` listens here unless --host/--port say otherwise.
HOST = env.str("HOST", default="127.0.0.1")
PORT = _env_or_fail(env.int, "PORT", "Set PORT to a TCP port number, like 8000.", default=8000)
# A visitor message with no bot decision this many seconds after it was stored is
# enqueued again by the sweeper (which runs every REPLY_RECOVERY_INTERVAL_S);
# messages older than REPLY_RECOVERY_MAX_AGE_S are left alone (an answer that
# late helps nobody) but still count against /healthz.
REPLY_RECOVERY_AFTER_S = _env_or_fail(
    env.float, "REPLY_RECOVERY_AFTER_S", "Set it to a number of seconds, like 10.", default=10.0
)
REPLY_RECOVERY_INTERVAL_S = _env_or_fail(
    env.float, "REPLY_RECOVERY_INTERVAL_S", "Set it to a number of seconds, like 5.", default=5.0
)
REPLY_RECOVERY_MAX_AGE_S = _env_or_fail(
    env.int, "REPLY_RECOVERY_MAX_AGE_S", "Set it to a number of seconds, like 3600.", default=3600
)
if CELERY_TRAINING_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT and CELERY_VISIBILITY_TIMEOUT > 60:
    raise ImproperlyConfigured(
        "CELERY_TRAINING_TIME_LIMIT must be below CELERY_VISIBILITY_TIMEOUT, or a running training is "
        "handed to a second worker. Raise CELERY_VISIBILITY_TIMEOUT or lower CELERY_TRAINING_TIME_LIMIT."
    )
# /healthz answers 503 when a visitor message has waited this long for the bot.
HEALTH_UNANSWERED_MAX_AGE_S = _env_or_fail(
    env.float, "HEALTH_UNANSWERED_MAX_AGE_S", "Set it to a number of seconds, like 30.", default=30.0
)
# Each worker writes a heartbeat this often; one missing for three beats is dead.
WORKER_HEARTBEAT_S = _env_or_fail(
    env.float, "WORKER_HEARTBEAT_S", "Set it to a number of seconds, like 5.", default=5.0
)
# Redis connections per server process for the channel layer. The pool waits up
# to REDIS_POOL_TIMEOUT_S for a free connection instead of failing at the cap.
REDIS_MAX_CONNECTIONS = _env_or_fail(
    env.int, "REDIS_MAX_CONNECTIONS", "Set it to a number of connections, like 500.", default=500
)
REDIS_POOL_TIMEOUT_S = _env_or_fail(
    env.float, "REDIS_POOL_TIMEOUT_S", "Set it to a number of seconds, like 10.", default=10.0
)
# Request bodies larger than these are refused with 413 before they are read:
# the widget's API takes a few hundred bytes; the admin imports intent files.
WIDGET_API_MAX_BODY_BYTES = _env_or_fail(
    env.int, "WIDGET_API_MAX_BODY_BYTES", "Set it to a number of bytes, like 16384.", default=16 * 1024
)
REQUEST_MAX_BODY_BYTES = _env_or_fail(
    env.int, "REQUEST_MAX_BODY_BYTES", "Set it to a number of bytes, like 33554432.", default=32 * 1024 * 1024
)
# Threads for websocket database work per server process (Channels' default is one).
WS_DATABASE_THREADS = _env_or_fail(env.int, "WS_DATABASE_THREADS", "Set it to a number of threads, like 8.", default=8)
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
    "task": "chatbot.ops.tasks.recover_unanswered_messages",
    "schedule": REPLY_RECOVERY_INTERVAL_S,
    "options": {"expires": REPLY_RECOVERY_INTERVAL_S},
}
# --- End of the reliability block ---------------------------------------------------
