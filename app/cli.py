"""Command-line tools: ``flask issue-token USER_ID [--expires 1h]``."""

from __future__ import annotations

import click
from flask import Flask

from app.security.tokens import issue
from app.services.validation import user_id as as_user_id
from config.parsing import parse_duration


def register_cli(app: Flask) -> None:
    @app.cli.command("issue-token")
    @click.argument("user")
    @click.option(
        "--expires", default=None, help="Lifetime such as 1h, 30d, 900 (default JWT_EXPIRES_IN)."
    )
    def issue_token(user: str, expires: str | None) -> None:
        """Print a token for USER signed with the configured JWT_SECRET."""
        if as_user_id(user) is None:
            raise click.BadParameter("must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
        try:
            seconds = None if expires is None else parse_duration(expires)
        except ValueError as error:
            raise click.BadParameter("must be a duration such as 1h, 30d or 900") from error
        click.echo(issue(user, seconds))
