"""Typed settings from ``TICKSTOCK_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from quart import Quart, current_app

from tickstock.vocab import DEFAULT_CHANNELS

DEFAULT_SECRET_KEY = "dev-insecure-change-me"
# Where create_app keeps the Settings in ``app.config``; read them with get_settings().
CONFIG_KEY = "SETTINGS"


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says which key and why."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service. Field names map to ``TICKSTOCK_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="TICKSTOCK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    env: Literal["development", "production", "test"] = "development"
    secret_key: str = DEFAULT_SECRET_KEY

    # Data stores. Empty URLs mean "not configured": `tickstock serve` then runs the local stack.
    database_url: str = ""
    database_read_url: str = ""
    redis_url: str = ""
    # Redis Sentinel: "host:port,host:port" (empty = off). The master's address then comes from
    # the sentinels; TICKSTOCK_REDIS_URL only supplies the database number, credentials and TLS.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    db_pool_min: int = Field(2, ge=0, le=200)
    db_pool_max: int = Field(20, ge=1, le=500)
    db_command_timeout: float = Field(5.0, gt=0)
    db_connect_timeout: float = Field(2.0, gt=0)
    redis_timeout: float = Field(2.0, gt=0)
    shutdown_timeout: float = Field(10.0, gt=0)
    health_check_timeout: float = Field(1.0, gt=0)
    key_prefix: str = "tickstock"
    local_stack_dir: str = ".tickstock"

    # Realtime ingest and delivery.
    ingest_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CHANNELS)
    )
    ingest_mode: Literal["pubsub", "stream"] = "pubsub"
    ingest_stream: str = "tickstock:ingest"
    ingest_claim_idle_seconds: float = Field(30.0, ge=0)
    ingest_max_message_bytes: int = Field(65536, ge=1024)
    history_max_events: int = Field(1000, ge=1)
    history_max_age_seconds: int = Field(3600, ge=1)
    max_symbols_per_client: int = Field(200, ge=1)
    max_sockets_per_address: int = Field(200, ge=1)
    max_sockets_per_user: int = Field(50, ge=1)
    socket_connect_timeout_seconds: float = Field(10.0, gt=0)
    client_queue_size: int = Field(1000, ge=1)
    client_buffer_bytes: int = Field(256 * 1024, ge=4096)
    ws_compression: Literal["off", "on"] = "off"
    ws_direct_writes: bool = True
    socketio_max_message_bytes: int = Field(65536, ge=1024)
    error_log_max_per_minute: int = Field(60, ge=0)
    alert_max_rules_per_user: int = Field(100, ge=1, le=10_000)
    alert_retention_days: int = Field(90, ge=0, le=36_500)  # 0: alerts are kept for ever
    alert_min_cooldown_seconds: int = Field(60, ge=0, le=86_400)
    alert_rate_per_user_per_minute: int = Field(60, ge=1)
    alert_pause_seconds: int = Field(600, ge=1, le=86_400)
    alert_inbox_max_per_user: int = Field(10_000, ge=10)
    # Jobs the producer runs (SPEC §13).
    job_pickup_seconds: int = Field(60, ge=1, le=86_400)
    job_stall_seconds: int = Field(300, ge=1, le=86_400)
    jobs_max_active_per_user: int = Field(3, ge=1, le=1000)

    # Web and auth.
    session_lifetime_seconds: int = Field(7 * 24 * 3600, ge=60)
    login_max_failures: int = Field(5, ge=1)
    login_lockout_seconds: int = Field(15 * 60, ge=1)
    login_rate_per_minute: int = Field(20, ge=1)
    login_account_failures_before_delay: int = Field(10, ge=1)
    login_account_max_delay_seconds: int = Field(30, ge=1)
    cookie_name: str = "tickstock_session"
    cookie_secure: bool | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    body_timeout_seconds: int = Field(30, ge=1)
    proxy_hops: int = Field(0, ge=0, le=10)
    demo_user: str = "demo"
    demo_password: str = ""

    # Operations.
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_token: str = ""
    demo_producer: bool = True
    demo_producer_rate: float = Field(2.0, ge=0)
    demo_job_pace: float = Field(0.5, ge=0, le=60)

    @field_validator("ingest_channels", "cors_origins", "redis_sentinels", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"sentinel address {address!r} is not host:port")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.env == "production"

    def check_secrets(self) -> None:
        """Refuse to run production with a missing or default secret key, or plain cookies."""
        if self.is_production and self.cookie_secure is False:
            raise ConfigError(
                "TICKSTOCK_COOKIE_SECURE=false is refused when TICKSTOCK_ENV=production: session"
                " cookies must be Secure (serve over HTTPS, or behind a TLS proxy with"
                " TICKSTOCK_PROXY_HOPS); leave it unset"
            )
        if self.is_production and (
            not self.secret_key
            or self.secret_key == DEFAULT_SECRET_KEY
            or len(self.secret_key) < 32
        ):
            raise ConfigError(
                "TICKSTOCK_SECRET_KEY must be set to a random value of at least 32 characters "
                "when TICKSTOCK_ENV=production (for example: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and ``.env``, with explicit overrides on top."""
    settings = Settings(**overrides)
    settings.check_secrets()
    return settings


def get_settings(app: Quart | None = None) -> Settings:
    """The settings of ``app`` (default: the current app), as ``create_app`` stored them."""
    settings: Settings = (app or current_app).config[CONFIG_KEY]
    return settings
