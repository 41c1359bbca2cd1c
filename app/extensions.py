"""Extension instances, created unbound and initialised by the application factory.

The HTTP rate limiter is the exception: see ``app.api.limits``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import request
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman

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


class PolicyCachingTalisman(Talisman):  # type: ignore[misc]
    """Talisman, turning each policy into its header text once instead of on every response.

    Without a CSP nonce the text depends on the policy alone (this service uses no nonce).
    """

    def __init__(self) -> None:
        super().__init__()
        self._policy_texts: dict[int, tuple[object, str]] = {}

    def _parse_policy(self, policy: object) -> str:
        if hasattr(request, "csp_nonce"):
            return str(super()._parse_policy(policy))
        cached = self._policy_texts.get(id(policy))
        if cached is None or cached[0] is not policy:
            cached = (policy, str(super()._parse_policy(policy)))
            self._policy_texts[id(policy)] = cached
        return cached[1]


talisman = PolicyCachingTalisman()
cors = CORS()
