"""Extension instances, created unbound and initialised by the application factory.

The HTTP rate limiter is the exception: see ``app.api.limits``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy

from app.patches.flask_talisman import PolicyCachingTalisman

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Rows stay loaded after commit: the service serialises what it just stored without a reload.
db = SQLAlchemy(
    metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
    session_options={"expire_on_commit": False},
)
migrate = Migrate()
socketio = SocketIO()
jwt = JWTManager()


talisman = PolicyCachingTalisman()
cors = CORS()
