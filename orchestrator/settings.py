"""Global settings: a YAML file, overridden by ``ORCHESTRATOR_*`` environment variables.

Precedence (lowest first): defaults -> settings file -> environment -> explicit arguments.
The file is ``$ORCHESTRATOR_SETTINGS_FILE`` or else ``./orchestrator.yaml`` if present.
Every process (coordinator, workers, Flower) builds the same ``Settings`` so that, for example,
the broker visibility timeout is one number everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.errors import InputError

SETTINGS_FILE_ENV = "ORCHESTRATOR_SETTINGS_FILE"
DEFAULT_SETTINGS_FILE = "orchestrator.yaml"


class Settings(BaseSettings):
    """Typed, validated, system-wide settings. Unknown keys are rejected."""

    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_", extra="forbid", frozen=True)

    broker_url: str | None = Field(None, description="redis://host:port/db; None = embedded private Redis")
    results_dir: Path = Field(Path("results"), description="root of the Parquet dataset")
    state_dir: Path = Field(Path(".orchestrator"), description="embedded Redis data, virtualenvs, logs")
    default_budget: float | None = Field(None, ge=0, description="USD budget for sweeps that set none")
    aws_region: str = "us-east-1"

    visibility_timeout: int = Field(
        1800, gt=0, description="seconds before an unacked message is redelivered"
    )
    max_attempts: int = Field(
        3, ge=1, description="deliveries of one experiment before it is failed for good"
    )
    max_retries: int = Field(5, ge=0, description="retries of a transient error")
    retry_backoff: float = Field(2.0, gt=0, description="base seconds of exponential backoff")
    retry_backoff_max: float = Field(120.0, gt=0)
    lease_ttl: float = Field(
        15.0, gt=0, description="seconds a running experiment's lease lives without heartbeat"
    )
    worker_lost_after: float = Field(
        30.0,
        gt=0,
        description="seconds without a worker heartbeat (sent every 5 s) "
        "before the messages it received are restored",
    )
    publish_window: int | None = Field(
        None,
        ge=1,
        description="experiments in flight per queue; default 2 x consumers, or 0.5 s of work for short ones",
    )
    batch_seconds: float = Field(
        0.1,
        ge=0,
        description="experiments of a few ms travel several to a message, "
        "about this much work each; 0: one per message",
    )
    worker_concurrency: int | None = Field(
        None, ge=1, description="embedded worker processes; default CPU count"
    )
    result_batch_size: int = Field(500, ge=1, description="results per Parquet write")
    compact_after_files: int = Field(16, ge=2, description="small files per partition before compaction")
    optimizer_interval: float = Field(5.0, gt=0, description="seconds between optimizer refits")
    braket_s3_bucket: str | None = Field(None, description="bucket managed Braket tasks write results to")
    braket_s3_prefix: str = "orchestrator/tasks"
    poll_interval: float = Field(10.0, gt=0, description="seconds between polls of a queued quantum task")
    global_budget: float | None = Field(None, ge=0, description="USD cap over all sweeps of this deployment")
    confirm_above: float = Field(
        10.0, ge=0, description="ask before running a sweep estimated above this (USD)"
    )
    price_table: Path | None = Field(
        None, description="your own price table (YAML), instead of the shipped one"
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
            raise ValueError("must be a Redis URL such as redis://localhost:6379/0")
        return value

    @property
    def embedded(self) -> bool:
        return self.broker_url is None


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the file, the environment and ``overrides`` (None values ignored)."""
    path = Path(os.environ.get(SETTINGS_FILE_ENV, DEFAULT_SETTINGS_FILE))
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            file_values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({exc}); fix the syntax", source=str(path)) from exc
        if not isinstance(file_values, dict):
            raise InputError("must be a mapping of setting: value", source=str(path))
    env_values = {k: v for k, v in overrides.items() if v is not None}
    try:
        # Environment beats file: pydantic-settings gives init kwargs top priority, so
        # pass the file values as defaults via a subclass-free merge.
        from_env = Settings().model_dump(exclude_unset=True)
        merged = {**file_values, **from_env, **env_values}
        return Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"{err['msg']}; set a valid value or remove it",
            source=str(path) if field in file_values else "settings/environment",
            field=field,
        ) from exc
