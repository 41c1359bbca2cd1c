"""Configuration: ``load_config`` picks the profile named by APP_ENV (or NODE_ENV)."""

from __future__ import annotations

from collections.abc import Mapping

from config.checks import ConfigError, check
from config.dev_secrets import load_or_create
from config.environment import PROJECT_ROOT, read_environment
from config.profiles import PROFILES, BaseConfig

__all__ = ["BaseConfig", "ConfigError", "check", "load_config", "read_environment"]


def profile_name(env: Mapping[str, str]) -> str:
    name = (env.get("APP_ENV") or env.get("NODE_ENV") or "development").strip().lower()
    return {"dev": "development", "prod": "production", "test": "testing"}.get(name, name)


def load_config(
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    instance_path: str | None = None,
) -> BaseConfig:
    """Read ``env`` (default: the environment and ``.env``) into the named profile.

    Raises ``ConfigError`` listing every problem. Profiles that allow it get generated
    development secrets, marked by ``GENERATED_SECRETS`` so the banner can say so.
    """
    env = read_environment() if env is None else env
    name = name or profile_name(env)
    if name not in PROFILES:
        raise ConfigError([f"APP_ENV must be one of {', '.join(PROFILES)}, got {name!r}"])
    cfg = PROFILES[name](env)
    instance = instance_path or str(PROJECT_ROOT / "instance")
    if cfg.GENERATES_DEV_SECRETS and not (cfg.JWT_SECRET and cfg.WEBHOOK_API_KEY):
        generated = load_or_create(instance)
        cfg.JWT_SECRET = cfg.JWT_SECRET or generated["JWT_SECRET"]
        cfg.WEBHOOK_API_KEY = cfg.WEBHOOK_API_KEY or [generated["WEBHOOK_API_KEY"]]
        cfg.GENERATED_SECRETS = True
    problems = check(cfg)
    if problems:
        raise ConfigError(problems)
    cfg.finalise(instance)
    return cfg
