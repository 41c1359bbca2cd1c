"""Start-up validation: every problem with the configuration, reported at once."""

from __future__ import annotations

from config.profiles import BaseConfig

MIN_JWT_SECRET_BYTES = 32
MIN_WEBHOOK_KEY_CHARS = 24


class ConfigError(RuntimeError):
    """Raised by the factory with every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


def check(cfg: BaseConfig) -> list[str]:
    """Every problem with ``cfg``; production also refuses weak secrets and wildcard origins."""
    problems = list(cfg.PARSE_PROBLEMS)
    if cfg.APP_ENV != "production":
        return problems
    if not cfg.JWT_SECRET:
        problems.append("JWT_SECRET is missing")
    elif len(cfg.JWT_SECRET.encode()) < MIN_JWT_SECRET_BYTES:
        problems.append(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long")
    if not cfg.WEBHOOK_API_KEY:
        problems.append("WEBHOOK_API_KEY is missing")
    for position, key in enumerate(cfg.WEBHOOK_API_KEY, start=1):
        if len(key) < MIN_WEBHOOK_KEY_CHARS:
            problems.append(
                f"WEBHOOK_API_KEY key #{position} must be at least "
                f"{MIN_WEBHOOK_KEY_CHARS} characters long"
            )
    if "*" in cfg.ALLOWED_ORIGINS:
        problems.append("ALLOWED_ORIGINS must list origins, not '*', in production")
    if any(alg.lower() == "none" for alg in cfg.JWT_ALGORITHMS):
        problems.append("JWT_ALGORITHMS must not contain 'none'")
    return problems
