"""The application factory."""

from __future__ import annotations

import logging
from typing import Any, Final

from quart import Quart
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket, Response
from werkzeug.wrappers import Response as WerkzeugResponse

from tickstock.auth import init_auth
from tickstock.blueprints import (
    admin_users,
    admin_views,
    alerts,
    analytics,
    auth,
    docs,
    health,
    indicators,
    jobs,
    market,
    metrics,
    pages,
    pages_auth,
    patterns,
    screener,
    streaming,
    symbols,
    user,
)
from tickstock.config import CONFIG_KEY, Settings, load_settings
from tickstock.errors import register_error_handlers
from tickstock.extensions.database import Database
from tickstock.extensions.redis import RedisClient
from tickstock.extensions.results import ResultCache
from tickstock.jsonutil import OrjsonProvider
from tickstock.logconfig import configure_logging
from tickstock.metrics import init_metrics
from tickstock.observability import init_observability
from tickstock.openapi import init_schema
from tickstock.realtime.server import RealtimeServer
from tickstock.validation import init_input_checks
from tickstock.web.files import Response as FileSafeResponse

log = logging.getLogger(__name__)

# Every HTTP area, in registration order.
BLUEPRINTS: Final = (
    admin_users.blueprint,
    admin_views.blueprint,
    alerts.blueprint,
    analytics.blueprint,
    auth.blueprint,
    docs.blueprint,
    health.blueprint,
    indicators.blueprint,
    jobs.blueprint,
    market.blueprint,
    metrics.blueprint,
    pages.blueprint,
    pages_auth.blueprint,
    patterns.blueprint,
    screener.blueprint,
    streaming.blueprint,
    symbols.blueprint,
    user.blueprint,
)


def create_app(
    overrides: dict[str, Any] | None = None, *, settings: Settings | None = None
) -> Quart:
    """Build a fresh Quart app: settings, extensions, validation, error handlers, blueprints.

    ``overrides`` are setting values (``{"database_url": ...}``) applied over the environment.
    """
    settings = settings or load_settings(**(overrides or {}))
    configure_logging(settings)

    app = Quart(__name__, template_folder="web/templates", static_folder="web/static")
    app.response_class = FileSafeResponse
    app.json_provider_class = OrjsonProvider
    app.json = OrjsonProvider(app)
    app.session_interface = NoSessions()  # type: ignore[assignment]
    app.config.update(
        {
            CONFIG_KEY: settings,
            "SECRET_KEY": settings.secret_key,
            "MAX_CONTENT_LENGTH": settings.max_request_bytes,
            "BODY_TIMEOUT": settings.body_timeout_seconds,
            "RESPONSE_TIMEOUT": 60,
            "JSON_SORT_KEYS": False,
        }
    )

    # Extensions, in start-up order (each registers its serving hooks and health check).
    init_observability(app)
    init_metrics(app)
    Database(app)
    RedisClient(app)
    ResultCache(app)
    init_auth(app)
    RealtimeServer(app)

    # Request validation and the OpenAPI document, then the one error path (SPEC §5).
    init_schema(app)
    init_input_checks(app)
    register_error_handlers(app)

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


class NoSessions(SessionInterface):
    """tickstock keeps no Flask-style ``session``: logins are quart-auth cookies checked against
    ``user_sessions``. So no session cookie is decoded or written on any request."""

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> SessionMixin | None:
        return None

    async def save_session(
        self, app: Quart, session: SessionMixin, response: Response | WerkzeugResponse | None
    ) -> None:
        return None
