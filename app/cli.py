"""Command-line tools: ``flask issue-token USER_ID [--expires 1h]`` and
``flask notifications purge --older-than 90d``."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from app.payloads.rules import RECIPIENT_RULE
from app.payloads.rules import user_id as as_user_id
from app.security.tokens import issue
from app.services import idempotency, retention
from config.parsing import parse_duration

notifications_cli = AppGroup("notifications", help="Maintain the stored notifications.")


def register_cli(app: Flask) -> None:
    @app.cli.command("issue-token")
    @click.argument("user")
    @click.option(
        "--expires", default=None, help="Lifetime such as 1h, 30d, 900 (default JWT_EXPIRES_IN)."
    )
    def issue_token(user: str, expires: str | None) -> None:
        """Print a token for USER signed with the configured JWT_SECRET."""
        if as_user_id(user) is None:
            raise click.BadParameter(RECIPIENT_RULE)
        try:
            seconds = None if expires is None else parse_duration(expires)
        except ValueError as error:
            raise click.BadParameter("must be a duration such as 1h, 30d or 900") from error
        click.echo(issue(user, seconds))

    app.cli.add_command(notifications_cli)


@notifications_cli.command("purge")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Delete notifications and connection logs older than this (90d, 12h, 3600).",
)
@click.option(
    "--batch-size",
    default=retention.BATCH_SIZE,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Rows deleted (and committed) per statement.",
)
def purge(older_than: str, batch_size: int) -> None:
    """Delete old notifications and connection logs, and expired idempotency keys, in batches;
    print how many rows each table lost."""
    try:
        seconds = parse_duration(older_than)
    except ValueError as error:
        raise click.BadParameter(
            "must be a duration such as 90d, 12h or 3600", param_hint="--older-than"
        ) from error
    if seconds <= 0:
        raise click.BadParameter("must be longer than zero", param_hint="--older-than")
    try:
        removed = retention.purge(timedelta(seconds=seconds), batch_size)
    except OverflowError as error:  # before year 1: nothing can be that old
        raise click.BadParameter("is too long", param_hint="--older-than") from error
    ttl_hours = int(idempotency.TTL.total_seconds()) // 3600
    for table, count in removed.items():
        age = f"{ttl_hours}h" if table == "idempotency_keys" else older_than
        click.echo(f"{table}: removed {count} (older than {age})")
