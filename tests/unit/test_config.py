"""Configuration: parsing, the Node server's names, and start-up checks."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config
from config.parsing import normalise_database_url, parse_duration

pytestmark = pytest.mark.unit
STRONG = {
    "JWT_SECRET": "s" * 32,
    "WEBHOOK_API_KEY": "k" * 24,
    "ALLOWED_ORIGINS": "https://a.example",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 2592000),
        ("12h", 43200),
        ("15m", 900),
        ("45s", 45),
        ("3600", 3600),
        (" 2w ", 1209600),
    ],
)
def test_durations_accept_the_node_formats(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1.5h", "-3m", "10y"])
def test_durations_refuse_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_mysql_urls_are_rewritten_for_pymysql_with_utf8mb4() -> None:
    assert (
        normalise_database_url("mysql://u:p@h:3306/db")
        == "mysql+pymysql://u:p@h:3306/db?charset=utf8mb4"
    )
    assert normalise_database_url("mysql://h/db?ssl=1").endswith("?ssl=1&charset=utf8mb4")
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_db_variables_build_a_url_and_database_url_wins(tmp_path) -> None:
    env = STRONG | {
        "DB_HOST": "db.local",
        "DB_PORT": "3307",
        "DB_USER": "me",
        "DB_PASSWORD": "p@ss",
        "DB_NAME": "notes",
        "DB_POOL_LIMIT": "7",
    }
    cfg = load_config("production", env, str(tmp_path))
    assert (
        cfg.SQLALCHEMY_DATABASE_URI
        == "mysql+pymysql://me:p%40ss@db.local:3307/notes?charset=utf8mb4"
    )
    assert cfg.SQLALCHEMY_ENGINE_OPTIONS["pool_size"] == 7
    cfg = load_config("production", env | {"DATABASE_URL": "mysql://x@y/z"}, str(tmp_path))
    assert cfg.SQLALCHEMY_DATABASE_URI == "mysql+pymysql://x@y/z?charset=utf8mb4"


def test_nothing_configured_means_sqlite_in_the_instance_folder_and_generated_secrets(
    tmp_path,
) -> None:
    cfg = load_config(None, {}, str(tmp_path))
    assert cfg.APP_ENV == "development"
    assert f"sqlite:///{tmp_path}/notify.sqlite3" == cfg.SQLALCHEMY_DATABASE_URI
    assert cfg.GENERATED_SECRETS and len(cfg.JWT_SECRET) >= 32
    assert cfg.RATELIMIT_STORAGE_URI == "memory://"
    again = load_config(None, {}, str(tmp_path))
    assert again.JWT_SECRET == cfg.JWT_SECRET  # kept, so the CLI signs with the server's secret
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o777 == 0o600


def test_node_env_is_honoured_when_app_env_is_unset(tmp_path) -> None:
    assert (
        load_config(None, STRONG | {"NODE_ENV": "production"}, str(tmp_path)).APP_ENV
        == "production"
    )
    cfg = load_config(
        None, STRONG | {"NODE_ENV": "production", "APP_ENV": "testing"}, str(tmp_path)
    )
    assert cfg.APP_ENV == "testing"


def test_jwt_expires_in_and_webhook_keys_are_read(tmp_path) -> None:
    cfg = load_config(
        "production",
        STRONG | {"JWT_EXPIRES_IN": "12h", "WEBHOOK_API_KEY": "a" * 24 + ", " + "b" * 30},
        str(tmp_path),
    )
    assert cfg.JWT_ACCESS_TOKEN_EXPIRES == 43200
    assert cfg.WEBHOOK_API_KEY == ["a" * 24, "b" * 30]


def test_production_refuses_weak_settings_listing_every_problem(tmp_path) -> None:
    env = {
        "JWT_SECRET": "short",
        "ALLOWED_ORIGINS": "*",
        "HTTP_RATE_LIMIT_MAX": "lots",
        "JWT_EXPIRES_IN": "forever",
    }
    with pytest.raises(ConfigError) as caught:
        load_config("production", env, str(tmp_path))
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 5
    for expected in (
        "JWT_SECRET must be at least 32 bytes",
        "WEBHOOK_API_KEY is missing",
        "ALLOWED_ORIGINS",
        "HTTP_RATE_LIMIT_MAX must be a whole number",
        "JWT_EXPIRES_IN must be a duration",
    ):
        assert expected in problems


def test_production_refuses_a_missing_secret_and_a_short_rotated_key(tmp_path) -> None:
    env = {"WEBHOOK_API_KEY": "k" * 24 + ",short", "ALLOWED_ORIGINS": "https://a.example"}
    with pytest.raises(ConfigError) as caught:
        load_config("production", env, str(tmp_path))
    assert caught.value.problems == [
        "JWT_SECRET is missing",
        "WEBHOOK_API_KEY key #2 must be at least 24 characters long",
    ]


def test_production_with_strong_settings_starts(tmp_path) -> None:
    cfg = load_config("production", STRONG, str(tmp_path))
    assert cfg.GENERATED_SECRETS is False


def test_bad_numbers_are_refused_in_every_profile(tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("development", {"PORT": "eighty", "REPLAY_LIMIT": "0"}, str(tmp_path))
    assert len(caught.value.problems) == 2


def test_unknown_profile_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="APP_ENV must be one of"):
        load_config(None, {"APP_ENV": "staging"}, str(tmp_path))


def test_heartbeat_and_connect_timeout_take_fractions_of_a_second(tmp_path) -> None:
    cfg = load_config(
        "production",
        STRONG | {"PING_INTERVAL": "0.3", "PING_TIMEOUT": "0.2", "CONNECT_TIMEOUT": "1.5"},
        str(tmp_path),
    )
    assert (cfg.PING_INTERVAL, cfg.PING_TIMEOUT, cfg.CONNECT_TIMEOUT) == (0.3, 0.2, 1.5)
    defaults = load_config("production", STRONG, str(tmp_path))
    assert (defaults.PING_INTERVAL, defaults.PING_TIMEOUT, defaults.CONNECT_TIMEOUT) == (25, 20, 10)


def test_seconds_that_are_not_positive_numbers_are_refused(tmp_path) -> None:
    env = {"PING_INTERVAL": "soon", "PING_TIMEOUT": "0", "CONNECT_TIMEOUT": "nan"}
    with pytest.raises(ConfigError) as caught:
        load_config("development", env, str(tmp_path))
    assert len(caught.value.problems) == 3, caught.value.problems
