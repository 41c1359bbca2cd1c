"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Response
from flask_migrate import upgrade
from gevent import monkey

from app import message_queue, web  # noqa: F401
from app.api import BLUEPRINTS
from app.api.limits import WEBHOOK_PATH, init_http_limits
from app.cli import register_cli
from app.errors import register_error_handlers
from app.extensions import cors, db, jwt, migrate, socketio, talisman
from app.observability.logging import adopt_library_loggers, configure_logging, formatter_for
from app.patches import engineio as engineio_patches
from app.patches import flask_socketio as flask_socketio_patch
from app.patches import socketio as socketio_patches
from app.patches.flask import NotifyFlask
from app.patches.flask_cors import capture_cors
from app.patches.flask_talisman import capture_talisman
from app.redis_client import make_redis
from app.registry import KEY as SERVICES_KEY
from app.registry import Services
from app.security.proxy import install_proxy_fix
from app.services.connection_logs import ConnectionLogWriter
from app.services.presence import make_presence
from app.services.rate_limits import make_socket_limits
from app.services.replay import make_replay_workers
from app.services.revocations import RevocationCache
from app.services.sending import make_send_workers

# Importing the handler modules registers them with ``@socketio.on`` before init_app binds them.
from app.sockets import connection, dispatch, events, live  # noqa: F401
from app.sockets.control import make_control
from app.sockets.handshakes import install_handshake_guard
from app.sockets.live import LiveSessions
from app.sockets.polling_limit import install_polling_limit
from config import load_config

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}


def create_app(
    config_name: str | None = None,
    env: Mapping[str, str] | None = None,
    instance_path: str | None = None,
) -> Flask:
    """Build the app for the profile ``config_name`` (default: APP_ENV) from ``env``
    (default: the process environment over ``.env``). Raises ConfigError listing every problem."""
    app = NotifyFlask(__name__, static_folder=None, instance_path=instance_path)
    config = load_config(config_name, env, app.instance_path)
    app.config.from_mapping(config.as_dict())
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_services(app)
    configure_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_cli(app)
    prepare_embedded_database(app)
    return app


def socket_origins(app: Flask) -> list[str] | str | None:
    """Origins allowed for the Socket.IO handshake: the same list as CORS.

    None means "same origin only" in python-engineio; an empty list would disable the check.
    """
    origins = list(app.config["ALLOWED_ORIGINS"])
    if "*" in origins:
        return "*"
    if app.config["SERVER_URL"]:
        origins.append(app.config["SERVER_URL"])
    return origins or None


def register_services(app: Flask) -> None:
    """Make every per-process service once, into the app's registry (``app.registry``): no
    connection is opened here, each opens on first use."""
    redis = make_redis(app)
    process_id = message_queue.new_process_id(app)
    app.extensions[SERVICES_KEY] = Services(
        process_id=process_id,
        redis=redis,
        presence=make_presence(app, redis, process_id),
        socket_limits=make_socket_limits(app),
        send_workers=make_send_workers(app),
        replay_workers=make_replay_workers(app),
        connection_logs=ConnectionLogWriter(app),
        revocations=RevocationCache(),
        live_sessions=LiveSessions(app),
        control=make_control(app, redis),
        log_formatter=formatter_for(app.config["APP_ENV"]),
    )


def register_extensions(app: Flask) -> None:
    """Initialise every extension once, in an order where each finds what it needs."""
    config = app.config
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    jwt.init_app(app)
    init_http_limits(app)
    app.after_request(retry_after_only_when_limited)
    cors.init_app(
        app,
        origins=config["ALLOWED_ORIGINS"] or [],
        supports_credentials=False,
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-API-Key",
            "Idempotency-Key",
            "X-Request-ID",
        ],
        expose_headers=["Retry-After", "X-Request-ID"],
    )
    production = config["APP_ENV"] == "production"
    talisman.init_app(
        app,
        force_https=config["FORCE_HTTPS"],
        strict_transport_security=production or config["FORCE_HTTPS"],
        content_security_policy=CONTENT_SECURITY_POLICY,
        session_cookie_secure=production,
        frame_options="DENY",
        referrer_policy="no-referrer",
    )
    # Before the Socket.IO server is made: it binds its Engine.IO handlers when constructed.
    engineio_patches.install_protocol_edges()
    socketio_patches.install()
    # The webhook's security and CORS headers, from the extensions' own first answers.
    capture_talisman(app, talisman, [WEBHOOK_PATH])
    capture_cors(app, [WEBHOOK_PATH], config["ALLOWED_ORIGINS"] or [])
    socketio.init_app(
        app,
        async_mode=async_mode(),
        client_manager=message_queue.build(app),
        cors_allowed_origins=socket_origins(app),
        max_http_buffer_size=config["MAX_CONTENT_LENGTH"],
        ping_interval=config["PING_INTERVAL"],
        ping_timeout=config["PING_TIMEOUT"],
        manage_session=False,
        always_connect=False,
        logger=False,
        engineio_logger=False,
    )
    adopt_library_loggers()
    install_handshake_guard(app)
    flask_socketio_patch.install(app)  # no copy of each request's environ
    dispatch.install()  # client events on python-socketio's server (app.sockets.dispatch)
    install_polling_limit(app)
    # ProxyFix goes outside the Socket.IO middleware, so handshakes see the fixed address too.
    install_proxy_fix(app, config["TRUSTED_PROXIES"])


def retry_after_only_when_limited(response: Response) -> Response:
    """Flask-Limiter adds Retry-After to every limited route's response; it means something
    only on a 429 (or a 503), so other responses drop it."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def async_mode() -> str:
    """gevent when the process was patched (gunicorn's worker, ``python wsgi.py``); threading
    otherwise (the ``flask`` CLI, tests with the Socket.IO test client)."""
    return "gevent" if monkey.is_module_patched("socket") else "threading"


def register_blueprints(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    if app.config["DEMO_PAGE"]:
        web.register(app)


def prepare_embedded_database(app: Flask) -> None:
    """With no database configured, bring the embedded SQLite file up to date on start."""
    if app.config["DATABASE_URL"] is None and not app.config["TESTING"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        with app.app_context():
            upgrade(directory=MIGRATIONS)
