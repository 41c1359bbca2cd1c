"""Configuration profiles: one class per APP_ENV, each read from an environment mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from limits import parse_many

from config.parsing import EnvReader, database_url
from config.serving import read_serving

DEFAULT_REDIS_PREFIX = "notify"


class BaseConfig:
    """Settings shared by every profile; attribute names are the contract's variable names.

    Extension keys (``SQLALCHEMY_*``, ``RATELIMIT_*``, ``JWT_*``) are derived here, in one place.
    """

    APP_ENV: ClassVar[str] = "base"
    DEBUG: ClassVar[bool] = False
    TESTING: ClassVar[bool] = False
    #: Whether a missing secret may be replaced by a generated development one.
    GENERATES_DEV_SECRETS: ClassVar[bool] = False
    DEFAULT_DEMO_PAGE: ClassVar[bool] = False

    def __init__(self, env: Mapping[str, str]) -> None:
        read = EnvReader(env)
        #: The serving process's settings, read for gunicorn by the same code (config.serving).
        serving = read_serving(read)
        self.HOST = serving.HOST
        self.PORT = serving.PORT
        self.CLIENT_TIMEOUT = serving.CLIENT_TIMEOUT
        self.PING_INTERVAL = serving.PING_INTERVAL
        self.PING_TIMEOUT = serving.PING_TIMEOUT
        self.LOG_LEVEL = serving.LOG_LEVEL
        self.SERVER_URL = read.text("SERVER_URL").rstrip("/")
        self.JWT_SECRET = read.text("JWT_SECRET")
        self.JWT_EXPIRES_IN = read.duration("JWT_EXPIRES_IN", 30 * 86400)
        self.JWT_ALGORITHMS = read.csv("JWT_ALGORITHMS") or ["HS256"]
        self.JWT_LEEWAY = read.integer("JWT_LEEWAY", 10)
        self.DATABASE_URL = database_url(read)
        self.DB_POOL_LIMIT = read.integer("DB_POOL_LIMIT", 10, minimum=1)
        #: Redis connections of a process (presence, limits, health); more callers wait.
        self.REDIS_POOL_LIMIT = read.integer("REDIS_POOL_LIMIT", 50, minimum=1)
        self.REDIS_URL = read.text("REDIS_URL") or None
        self.REDIS_PREFIX = read.text("REDIS_PREFIX", DEFAULT_REDIS_PREFIX)
        #: Off only for Flask-SocketIO's test client, which refuses a message queue; presence
        #: and limits still use Redis then.
        self.MESSAGE_QUEUE = read.boolean("MESSAGE_QUEUE", True)
        #: Pushes go only to the processes that hold their recipient (0: every push to every
        #: process, as versions before it did; see the README's rolling deploy).
        self.ROUTED_DELIVERY = read.boolean("ROUTED_DELIVERY", True)
        self.HTTP_RATE_LIMIT_WINDOW = read.integer("HTTP_RATE_LIMIT_WINDOW", 15, minimum=1)
        self.HTTP_RATE_LIMIT_MAX = read.integer("HTTP_RATE_LIMIT_MAX", 100, minimum=1)
        self.SOCKET_RATE_LIMIT_POINTS = read.integer("SOCKET_RATE_LIMIT_POINTS", 10, minimum=1)
        self.SOCKET_RATE_LIMIT_DURATION = read.integer("SOCKET_RATE_LIMIT_DURATION", 60, minimum=1)
        self.CONNECT_RATE_LIMIT = read.text("CONNECT_RATE_LIMIT", "60/minute")
        self.ALLOWED_ORIGINS = read.csv("ALLOWED_ORIGINS")
        self.WEBHOOK_API_KEY = read.csv("WEBHOOK_API_KEY")
        self.WEBHOOK_RATE_LIMIT = read.text("WEBHOOK_RATE_LIMIT", "6000/minute")
        self.REPLAY_LIMIT = read.integer("REPLAY_LIMIT", 500, minimum=1)
        #: Seconds before a socket's token expires that it gets ``token_expiring``.
        self.SESSION_REFRESH_WINDOW = read.integer("SESSION_REFRESH_WINDOW", 60)
        self.MAX_MESSAGE_LENGTH = read.integer("MAX_MESSAGE_LENGTH", 2000, minimum=1)
        self.MAX_CONTENT_LENGTH = read.integer("MAX_CONTENT_LENGTH", 64 * 1024, minimum=1024)
        self.TRUSTED_PROXIES = read.integer("TRUSTED_PROXIES", 0)
        self.METRICS_TOKEN = read.text("METRICS_TOKEN")
        self.DEMO_PAGE = read.boolean("DEMO_PAGE", self.DEFAULT_DEMO_PAGE)
        self.FORCE_HTTPS = read.boolean("FORCE_HTTPS", False)
        self.PRESENCE_TTL = read.integer("PRESENCE_TTL", 45, minimum=3)
        #: An Engine.IO session without a Socket.IO CONNECT within this many seconds is closed.
        self.CONNECT_TIMEOUT = read.seconds("CONNECT_TIMEOUT", 10, minimum=0.05)
        #: A garbage collection pausing the worker this long (ms) is logged at WARNING; 0: never.
        #: Freeze start-up and connect bursts out of full collections (``app.gc_policy``).
        self.GC_FREEZE = read.boolean("GC_FREEZE", True)
        self.GC_PAUSE_LOG_MS = read.integer("GC_PAUSE_LOG_MS", 100, minimum=0)
        for name in ("WEBHOOK_RATE_LIMIT", "CONNECT_RATE_LIMIT"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                read.problems.append(
                    f"{name} must be a rate such as 6000/minute, got {getattr(self, name)!r}"
                )
        #: Problems found while reading; ``config.checks.check`` reports them with the rest.
        self.PARSE_PROBLEMS = read.problems
        #: Filled by the factory when the development secrets were generated.
        self.GENERATED_SECRETS = False

    def finalise(self, instance_path: str) -> None:
        """Derive extension settings once secrets and the database location are known."""
        self.SQLALCHEMY_DATABASE_URI = self.DATABASE_URL or (
            f"sqlite:///{instance_path}/notify.sqlite3"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(
            self.SQLALCHEMY_DATABASE_URI, self.DB_POOL_LIMIT
        )
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.SECRET_KEY = self.JWT_SECRET
        self.JWT_SECRET_KEY = self.JWT_SECRET
        self.JWT_ALGORITHM = self.JWT_ALGORITHMS[0]
        self.JWT_DECODE_ALGORITHMS = self.JWT_ALGORITHMS
        self.JWT_ACCESS_TOKEN_EXPIRES = self.JWT_EXPIRES_IN
        self.JWT_DECODE_LEEWAY = self.JWT_LEEWAY
        self.JWT_TOKEN_LOCATION = ["headers"]
        # app.services.limit_storage: Redis, counted locally while far from the limit.
        # (``notify+redis+cluster://`` on a Redis Cluster).
        self.RATELIMIT_STORAGE_URI = f"notify+{self.REDIS_URL}" if self.REDIS_URL else "memory://"
        # Every Redis key of a deployment starts with REDIS_PREFIX (limits' own default is LIMITS).
        self.RATELIMIT_KEY_PREFIX = ""
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_HEADER_LIMIT = "RateLimit-Limit"
        self.RATELIMIT_HEADER_REMAINING = "RateLimit-Remaining"
        self.RATELIMIT_HEADER_RESET = "RateLimit-Reset"
        self.RATELIMIT_STRATEGY = "sliding-window-counter"
        #: Per client address, on every route but those ``app.api.limits`` exempts.
        self.RATELIMIT_DEFAULT = (
            f"{self.HTTP_RATE_LIMIT_MAX} per {self.HTTP_RATE_LIMIT_WINDOW} minute"
        )
        self.RATELIMIT_SWALLOW_ERRORS = True  # a Redis outage must not turn into 500s
        self.RATELIMIT_STORAGE_OPTIONS = (
            {
                "key_prefix": f"{self.REDIS_PREFIX}:limits",
                "socket_timeout": 2,
                "socket_connect_timeout": 2,
            }
            if self.REDIS_URL
            else {}
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.isupper()} | {
            "APP_ENV": self.APP_ENV,
            "DEBUG": self.DEBUG,
            "TESTING": self.TESTING,
        }


def engine_options(uri: str, pool_limit: int) -> dict[str, Any]:
    """Pool settings: ``DB_POOL_LIMIT`` connections, checked before use, recycled before MySQL's
    ``wait_timeout`` closes them."""
    if uri.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {
        "pool_size": pool_limit,
        "max_overflow": 0,
        "pool_timeout": 10,
        "pool_pre_ping": True,
        "pool_recycle": 280,
        "connect_args": {"connect_timeout": 5},
    }


class DevelopmentConfig(BaseConfig):
    APP_ENV = "development"
    DEBUG = False  # the reloader and debugger do not mix with gevent; logs are verbose instead
    GENERATES_DEV_SECRETS = True
    DEFAULT_DEMO_PAGE = True


class TestingConfig(BaseConfig):
    APP_ENV = "testing"
    TESTING = True
    GENERATES_DEV_SECRETS = True


class ProductionConfig(BaseConfig):
    APP_ENV = "production"


PROFILES: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
