"""All settings in one place; nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.services.identifiers import InvalidIdentifier, normalise_org_number

DEV_ISSUER = "urn:samplan:dev-issuer"
DEFAULT_AUDIENCE = "samplan"
DEFAULT_AUDIT_PEPPER = "dev-only-audit-pepper"


class ConfigError(RuntimeError):
    """A setting that makes the service unsafe or unable to start; the message is one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLAN_", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    data_dir: Path = Path("./data")
    # Empty means "an SQLite file in the data folder".
    database_url: str = ""
    # Migrations run as the schema owner; the service itself connects as a role without ownership
    # (PostgreSQL), so RLS applies to it. Empty means "the same as database_url".
    migration_database_url: str = ""
    # Reports (aggregates over a whole county) may read from a PostgreSQL read replica: a hot
    # standby reached as the same service role. Empty means "the primary" (database_url).
    read_database_url: str = ""
    # The service reaches PostgreSQL through a pooler in transaction mode (PgBouncer): no
    # statement may outlive its transaction, so asyncpg's and SQLAlchemy's prepared-statement
    # caches are off and statements get unique names (docs/scaling.md).
    db_transaction_pooler: bool = False
    # Name of the PostgreSQL role the service connects as; migrations grant it table privileges.
    db_app_role: str = "samplan_app"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_statement_timeout_ms: int = Field(default=15_000, ge=100)
    db_connect_timeout_s: float = Field(default=3.0, gt=0)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A client that has not sent its whole body this long after its headers is answered 408
    # (RequestGuard), so a trickled upload cannot hold a worker indefinitely.
    body_read_timeout_seconds: float = Field(default=30.0, gt=0)

    # Rate limits per user (issuer + subject) and per organisation: token buckets of `burst`
    # requests refilled at `per_minute`; 429 with Retry-After when empty. Per process (app/ratelimit.py).
    rate_limit_enabled: bool = True
    rate_limit_user_per_minute: int = Field(default=600, ge=1)
    rate_limit_user_burst: int = Field(default=120, ge=1)
    rate_limit_org_per_minute: int = Field(default=3000, ge=1)
    rate_limit_org_burst: int = Field(default=600, ge=1)

    # `samplan serve` (uvicorn) limits: connections or requests in flight before 503, seconds an
    # idle keep-alive connection is held, and the largest request line plus headers in bytes.
    server_limit_concurrency: int = Field(default=200, ge=1)
    server_keep_alive_seconds: int = Field(default=5, ge=1)
    server_max_header_bytes: int = Field(default=32_768, ge=4096)
    jwks_cache_seconds: int = Field(default=3600, ge=60)
    jwks_min_refresh_seconds: int = Field(default=60, ge=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)
    clock_skew_seconds: int = Field(default=30, ge=0, le=300)

    # Included in every audit hash so a person with database access alone cannot forge a chain.
    audit_pepper: str = DEFAULT_AUDIT_PEPPER
    # The dev issuer signs tokens with a key kept in the data folder. Never in prod.
    dev_issuer_enabled: bool = True

    # The organisation that operates the service; only its tokens may carry platform_admin.
    # Empty in dev means any demo organisation may.
    operator_org_number: str = ""

    # Webhooks: delivery runs in the service process unless a separate `samplan worker` does it.
    dispatcher_in_process: bool = True
    dispatcher_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_lease_seconds: int = Field(default=60, ge=1)
    webhook_backoff_base_seconds: float = Field(default=10.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    # Extra CA certificates to trust for outbound https (a regional private CA, or a test's).
    extra_ca_file: Path | None = None

    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'samplan.db').as_posix()}"
        if not self.migration_database_url:
            self.migration_database_url = self.database_url
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def dev_key_path(self) -> Path:
        return self.data_dir / "dev-issuer-key.pem"

    def check_safe_for_env(self) -> None:
        """Refuse unsafe combinations, with one line that says why."""
        if self.operator_org_number:
            try:
                normalise_org_number(self.operator_org_number)
            except InvalidIdentifier as exc:
                # Checked here: otherwise every platform_admin request would fail at authentication.
                raise ConfigError(
                    f"refusing to start: SAMPLAN_OPERATOR_ORG_NUMBER is not valid ({exc})"
                ) from None
        if self.env != "prod":
            return
        if self.dev_issuer_enabled:
            raise ConfigError(
                "refusing to start: SAMPLAN_ENV=prod with the dev issuer enabled "
                "(set SAMPLAN_DEV_ISSUER_ENABLED=false)"
            )
        if self.audit_pepper == DEFAULT_AUDIT_PEPPER or len(self.audit_pepper) < 32:
            raise ConfigError(
                "refusing to start: SAMPLAN_ENV=prod with the default or a short SAMPLAN_AUDIT_PEPPER "
                "(set a random secret of at least 32 characters)"
            )
        if not self.operator_org_number:
            raise ConfigError(
                "refusing to start: SAMPLAN_ENV=prod needs SAMPLAN_OPERATOR_ORG_NUMBER "
                "(the organisation whose tokens may carry platform_admin)"
            )
        if self.is_sqlite:
            raise ConfigError(
                "refusing to start: SAMPLAN_ENV=prod needs PostgreSQL (set SAMPLAN_DATABASE_URL)"
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
