"""The demo inbox page: a browser client of the service, on when DEMO_PAGE is set.

``bp`` serves the page, its static files and the Socket.IO client from this package's
``node_modules`` (``npm ci`` in ``app/web``; never a CDN). ``dev_tokens.bp`` hands out tokens
and exists only in the development and testing profiles. Everything works under the strict CSP
of ``app/__init__.py``: no inline script or style.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, render_template, send_file

from app.errors import ApiError, ErrorCode
from app.web import dev_tokens

HERE = Path(__file__).resolve().parent
#: Where ``npm ci`` in ``app/web`` puts the client's browser bundle.
VENDOR_DIR = HERE / "node_modules" / "socket.io-client" / "dist"
#: The files of the bundle the page may load; nothing else under node_modules is served.
VENDOR_FILES = frozenset({"socket.io.min.js", "socket.io.min.js.map"})
#: Profiles where ``POST /demo/token`` exists; never production.
DEV_TOKEN_PROFILES = frozenset({"development", "testing"})

bp = Blueprint(
    "web",
    __name__,
    url_prefix="/demo",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def register(app: Flask) -> None:
    """Register the page, and the token endpoint in the development and testing profiles."""
    app.register_blueprint(bp)
    if app.config["APP_ENV"] in DEV_TOKEN_PROFILES:
        app.register_blueprint(dev_tokens.bp)


def vendor_dir() -> Path:
    """Overridable in tests through ``DEMO_VENDOR_DIR`` (to show the page without the client)."""
    configured = current_app.config.get("DEMO_VENDOR_DIR")
    return Path(configured) if configured else VENDOR_DIR


@bp.get("/")
def inbox_page() -> str:
    """The page people open; HTML only, its script and style are static files."""
    return render_template(
        "inbox.html",
        client_installed=(vendor_dir() / "socket.io.min.js").is_file(),
        dev_tokens=current_app.config["APP_ENV"] in DEV_TOKEN_PROFILES,
        npm_dir="app/web",
    )


@bp.get("/vendor/<name>")
def vendor(name: str) -> Response:
    """The Socket.IO browser client from npm; 404 (the error shape) until ``npm ci`` ran."""
    path = vendor_dir() / name
    if name not in VENDOR_FILES or not path.is_file():
        raise ApiError(
            ErrorCode.NOT_FOUND,
            "The Socket.IO client is not installed: run npm ci in app/web.",
        )
    return send_file(path, max_age=3600)
