"""One migration history for MariaDB and SQLite: upgrade from empty, match the models, downgrade."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import MIGRATIONS, create_app
from app.extensions import db
from tests.conftest import BACKEND, mariadb_admin, mariadb_url

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    if BACKEND == "embedded":
        yield f"sqlite:///{tmp_path}/empty.sqlite3"
        return
    name = f"notify_mig_{uuid.uuid4().hex[:10]}"
    mariadb_admin(f"CREATE DATABASE `{name}`")
    try:
        yield mariadb_url(name)
    finally:
        mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")


def test_migrations_upgrade_an_empty_database_to_the_models_and_back(
    base_env: dict[str, str], empty_database_url: str
) -> None:
    app = create_app("testing", base_env | {"DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        inspector = sa.inspect(db.engine)
        assert {"notifications", "connection_logs"} <= set(inspector.get_table_names())
        indexes = {ix["name"] for ix in inspector.get_indexes("notifications")}
        assert {"ix_notifications_recipient_id", "ix_notifications_recipient_status_id"} <= indexes
        with db.engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert drift == []
        downgrade(directory=MIGRATIONS, revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.session.remove()
        db.engine.dispose()


@pytest.mark.mariadb
def test_mariadb_tables_are_utf8mb4(base_env: dict[str, str], migrated: None) -> None:
    app = create_app("testing", base_env)
    with app.app_context():
        collations = (
            db.session.execute(
                sa.text(
                    "SELECT table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() "
                    "AND table_name IN ('notifications', 'connection_logs')"
                )
            )
            .scalars()
            .all()
        )
        db.session.remove()
    assert collations == ["utf8mb4_bin", "utf8mb4_bin"]
