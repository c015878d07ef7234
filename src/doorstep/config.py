"""Settings read from the environment (prefix DOORSTEP_), and the two run modes they imply."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")


class ConfigurationError(RuntimeError):
    """The settings cannot run the platform; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'doorstep.db'}",
        description="SQLAlchemy URL; SQLite selects the embedded mode, PostgreSQL production.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for the bus, jobs, cache and rate limits; unset: in-process.",
    )
    redis_prefix: str = Field(default="doorstep", description="Namespace of every Redis key.")
    secret_key: str | None = Field(default=None, description="Signs tokens and sessions.")
    demo_password: str = "doorstep-demo"  # noqa: S105 - the published demo password
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=14, ge=1)
    session_days: int = Field(default=7, ge=1)
    auth_cache_seconds: float = Field(
        default=30,
        ge=0,
        description=(
            "How long a process trusts a session check it made (0: check every request). "
            "Revocations and user changes made through Doorstep reach every process at once."
        ),
    )
    login_attempts: int = Field(default=10, ge=1, description="Failed logins allowed per window.")
    login_window_seconds: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest body of a photo upload request (files of up to 20 MB each); "
        "every other route keeps max_body_bytes.",
    )
    media_dir: str = Field(
        default=str(VAR_DIR / "media"), description="Where uploaded property photos are stored."
    )
    event_retention_days: int = Field(default=7, ge=1, description="Outbox events kept for resume.")
    ws_queue_size: int = Field(default=1000, ge=10, description="Events buffered per slow client.")
    ws_heartbeat_seconds: float = Field(default=20, gt=0)
    ws_idle_seconds: float = Field(default=90, gt=0, description="Close silent connections.")
    dashboard_interval_seconds: int = Field(
        default=15, ge=10, le=60, description="Live dashboard push period (seed 002: 10-60 s)."
    )
    jobs_path: str = Field(
        default=str(VAR_DIR / "jobs.db"), description="Embedded job queue file (SQLite)."
    )
    jobs_workers: int = Field(default=2, ge=1, description="Job threads (embedded) per process.")
    run_jobs_in_server: bool | None = Field(
        default=None, description="Run jobs inside the server; default: embedded mode only."
    )
    log_format: str | None = Field(default=None, description="'json' or 'text'; default by mode.")
    log_level: str = "INFO"
    freeze_gc: bool = Field(
        default=True,
        description="After start-up, keep the objects loaded so far out of the garbage "
        "collector's full passes (gc.freeze): 400,000 of them made a full pass take 300 ms.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="Let FastAPI report traces, metrics and logs to the OpenTelemetry providers "
        "the deployment configures; off, its per-request check is skipped (/metrics stays).",
    )
    secure_cookies: bool | None = Field(
        default=None, description="Send cookies only over HTTPS; default on in production."
    )
    public_url: str | None = Field(
        default=None,
        description="The address users reach the site at, for links in e-mails and messages.",
    )
    capture_messages: bool | None = Field(
        default=None,
        description="Keep messages of unconfigured channels for /admin/outbox instead of "
        "failing them; default: embedded mode only.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server; unset: no e-mail.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = Field(default="Doorstep <noreply@doorstep.localhost>")
    smtp_starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    smtp_timeout_seconds: float = Field(default=15, gt=0)
    twilio_account_sid: str | None = Field(default=None, description="SMS through Twilio.")
    twilio_auth_token: str | None = None
    twilio_from: str | None = Field(default=None, description="Sender number or service SID.")
    twilio_base_url: str | None = Field(
        default=None, description="Replaces https://api.twilio.com (a proxy or a test double)."
    )
    whatsapp_token: str | None = Field(default=None, description="WhatsApp Cloud API token.")
    whatsapp_phone_number_id: str | None = None
    whatsapp_base_url: str = Field(default="https://graph.facebook.com/v21.0")
    whatsapp_template: str | None = Field(
        default=None,
        description="Approved template for business-initiated messages; unset: plain text.",
    )
    whatsapp_template_language: str = "en_US"
    channel_timeout_seconds: float = Field(default=15, gt=0, description="SMS/WhatsApp calls.")
    anthropic_api_key: str | None = Field(
        default=None,
        description="Personalise celebration and recommendation text with Claude; unset: "
        "the deterministic templates.",
    )
    anthropic_base_url: str | None = Field(
        default=None, description="Replaces https://api.anthropic.com (a proxy or a test double)."
    )
    anthropic_model: str = Field(default="claude-sonnet-5")
    anthropic_timeout_seconds: float = Field(
        default=4, gt=0, description="A slow answer falls back to the template text."
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("DOORSTEP_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @property
    def embedded(self) -> bool:
        """The one-command mode: SQLite file, in-process bus, jobs and cache."""
        return self.database_url.startswith("sqlite")

    @property
    def json_logs(self) -> bool:
        return (self.log_format or ("text" if self.embedded else "json")) == "json"

    @property
    def captures_messages(self) -> bool:
        return self.embedded if self.capture_messages is None else self.capture_messages

    @property
    def site_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def cookies_secure(self) -> bool:
        return (not self.embedded) if self.secure_cookies is None else self.secure_cookies

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or (embedded only) generated once under ./var/."""
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise ConfigurationError("DOORSTEP_SECRET_KEY must be at least 32 characters")
            return self.secret_key
        if not self.embedded:
            raise ConfigurationError(
                "DOORSTEP_SECRET_KEY is required in production "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        key_file = VAR_DIR / "secret_key"
        if not key_file.exists():
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
