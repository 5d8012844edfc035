"""Global settings: a YAML file, overridden by ``ORCHESTRATOR_*`` environment variables.

Precedence (lowest first): defaults -> settings file -> environment -> explicit arguments.
The file is ``$ORCHESTRATOR_SETTINGS_FILE`` or else ``./orchestrator.yaml`` if present.
Every process (coordinator, workers, Flower) builds the same ``Settings`` so that, for example,
the broker visibility timeout is one number everywhere.

An ``ORCHESTRATOR_*`` variable that is neither a setting nor in ``NON_SETTING_ENV`` is a typo
until proven otherwise (``ORCHESTRATOR_VISIBILTY_TIMEOUT=5`` would silently leave 1800):
``check_environment`` names the closest setting.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import InputError

if TYPE_CHECKING:
    from core.config import SweepConfiguration

SETTINGS_FILE_ENV = "ORCHESTRATOR_SETTINGS_FILE"
DEFAULT_SETTINGS_FILE = "orchestrator.yaml"
ENV_PREFIX = "ORCHESTRATOR_"

#: ``ORCHESTRATOR_*`` variables that are legitimately not settings, and who reads or sets them.
NON_SETTING_ENV = frozenset(
    {
        SETTINGS_FILE_ENV,  # this module: which settings file
        "ORCHESTRATOR_FLOWER_AUTH",  # `orchestrator flower --basic-auth`
        "ORCHESTRATOR_PARAMS_FILE",  # set by the command adapter for the project's command
        "ORCHESTRATOR_SEED",  # set for a project's command: the repeat's seed
        "ORCHESTRATOR_TEST_REDIS_URL",  # the test suite's opt-in Redis (tests/support/redis_db.py)
    }
)

logger = logging.getLogger(__name__)

#: A budget in USD, 0 or more: the rule of every budget field (the sweep file's ``budget_limit``,
#: the settings' ``default_budget`` and ``global_budget``). Values that come from elsewhere meet it
#: in the budget ledger (``orchestrator.store.budget.check_limit``), which enforces budgets.
Budget = Annotated[float, Field(ge=0)]
_warned: set[str] = set()  # unknown variables this process has already warned about


class Settings(BaseSettings):
    """Typed, validated, system-wide settings. Unknown keys are rejected."""

    # an infinite budget or timeout is no limit at all: leave the setting out instead
    model_config = SettingsConfigDict(
        env_prefix="ORCHESTRATOR_", extra="forbid", frozen=True, allow_inf_nan=False
    )

    broker_url: str | None = Field(None, description="redis://host:port/db; None = embedded private Redis")
    results_dir: str = Field(
        "results", description="root of the Parquet dataset: a local folder or s3://bucket/prefix"
    )
    state_dir: Path = Field(Path(".orchestrator"), description="embedded Redis data, virtualenvs, logs")
    default_budget: Budget | None = Field(None, description="USD budget for sweeps that set none")
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
        description="seconds without a worker heartbeat (sent every second; at least 3 are missed) "
        "before the messages it received are restored",
    )
    publish_window: int | None = Field(
        None,
        ge=1,
        description="experiments in flight per queue; default 2 x consumers, or 1 s of work for short ones",
    )
    batch_seconds: float = Field(
        0.5,
        ge=0,
        description="experiments of a few ms travel several to a message, "
        "about this much work each; 0: one per message",
    )
    worker_concurrency: int | None = Field(
        None, ge=1, description="embedded worker processes; default CPU count"
    )
    result_batch_size: int = Field(500, ge=1, description="results per Parquet write")
    compact_after_files: int = Field(16, ge=2, description="small files per partition before compaction")
    code_max_bytes: int = Field(
        50 * 2**20, gt=0, description="largest project folder shipped to workers (bytes of its files)"
    )
    code_cache_bytes: int = Field(
        2 * 2**30, gt=0, description="a worker host's cache of unpacked code, pruned least recently used"
    )
    optimizer_interval: float = Field(5.0, gt=0, description="seconds between optimizer refits")
    candidate_pool: int = Field(
        50_000,
        ge=100,
        description="points an adaptive refit scores: what is pending, the neighbourhoods of the "
        "best results and a space-filling sample of the rest, never the whole space",
    )
    braket_s3_bucket: str | None = Field(None, description="bucket managed Braket tasks write results to")
    braket_s3_prefix: str = "orchestrator/tasks"
    poll_interval: float = Field(10.0, gt=0, description="seconds between polls of a queued quantum task")
    global_budget: Budget | None = Field(None, description="USD cap over all sweeps of this deployment")
    confirm_above: float = Field(
        10.0, ge=0, description="ask before running a sweep estimated above this (USD)"
    )
    price_table: Path | None = Field(
        None, description="your own price table (YAML), instead of the shipped one"
    )
    braket_probe_seconds: float = Field(
        10.0, gt=0, description="while Braket is unreachable from a worker, how often it checks again"
    )
    # `orchestrator serve` (orchestrator.web): a submitted sweep runs code on every worker
    api_token: SecretStr | None = Field(
        None, description="bearer token of the REST API; generated into the state folder if unset"
    )
    project_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders a sweep submitted over HTTP may name projects in "
        "(os.pathsep-separated in the environment); default: the folder `serve` starts in",
    )
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed by CORS (comma-separated); none by default"
    )
    api_max_body: int = Field(1_000_000, gt=0, description="largest request body accepted (bytes)")
    api_interpreters: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="interpreters (or folders of them) a sweep submitted over HTTP may name in "
        "'python:' outside its project folder (os.pathsep-separated)",
    )
    api_commands: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["python"],
        description="programs a command template submitted over HTTP may start with besides the "
        "project's own files (comma-separated); python: the project's interpreter on a project script",
    )
    api_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers besides the bound host and localhost "
        "(comma-separated; * for any)",
    )
    preflight_seconds: float = Field(
        60.0, gt=0, description="time allowed to build and check a paid sweep's circuits before it runs"
    )
    braket_limits: str | None = Field(
        None, description="JSON overrides of the Braket service limits (rates, shots, max_task_seconds)"
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
            raise ValueError("must be a Redis URL such as redis://localhost:6379/0")
        return value

    @field_validator("results_dir", mode="before")
    @classmethod
    def _location(cls, value: Any) -> Any:
        # a string, not a Path, which would make s3://bucket/prefix into s3:/bucket/prefix
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("project_roots", "api_interpreters", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part]
        return value

    @field_validator("api_cors_origins", "api_commands", "api_allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    def budget_for(self, config: SweepConfiguration) -> float | None:
        """A sweep's USD budget: its own ``budget_limit``, else ``default_budget`` (None: no limit)."""
        return config.budget_limit if config.budget_limit is not None else self.default_budget


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the file, the environment and ``overrides`` (None values ignored).

    Unknown ``ORCHESTRATOR_*`` variables are warned about (the CLI refuses them earlier for
    one-shot commands), so a typo is never silent for Python API users either.
    """
    check_environment(strict=False)
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


def known_env_names() -> frozenset[str]:
    """Every ``ORCHESTRATOR_*`` name this system reads: the settings and ``NON_SETTING_ENV``."""
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields) | NON_SETTING_ENV


def unknown_env(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Unknown ``ORCHESTRATOR_*`` variables of ``environ``, each with the closest known name."""
    environ = os.environ if environ is None else environ
    known = known_env_names()
    suffixes = [name.removeprefix(ENV_PREFIX) for name in known]  # the shared prefix is no evidence
    unknown = {}
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings matches environment names case-insensitively
        if upper.startswith(ENV_PREFIX) and upper not in known:
            close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
            unknown[name] = ENV_PREFIX + close[0] if close else None
    return unknown


def check_environment(*, strict: bool, environ: Mapping[str, str] | None = None) -> None:
    """Refuse (``strict``) or loudly warn about unknown ``ORCHESTRATOR_*`` variables.

    One-shot commands refuse, so a typo never runs a sweep with a default the user meant to
    change; long-running services warn, so a deployment is not taken down by a stray variable.

    Raises:
        InputError: ``strict`` and some variable is unknown.
    """
    unknown = unknown_env(environ)
    if not strict:  # warn once per process about each name, however often settings are loaded
        unknown = {name: close for name, close in unknown.items() if name not in _warned}
        _warned.update(unknown)
    if not unknown:
        return
    problems = "; ".join(
        f"{name} is not a setting" + (f" (did you mean {close}?)" if close else "")
        for name, close in unknown.items()
    )
    if None in unknown.values():
        settings = sorted(ENV_PREFIX + name.upper() for name in Settings.model_fields)
        problems += f" (the settings: {', '.join(settings)})"
    if strict:
        raise InputError(f"{problems}. Fix the name or unset it", source="environment")
    logger.warning("UNKNOWN SETTING IGNORED: %s. It has no effect; fix the name or unset it.", problems)
