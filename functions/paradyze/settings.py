"""The one typed Settings; nothing else in the package reads os.environ."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .agent_env import PLATFORM_MODEL_VARS
from .state_secrets import generate_once

RuntimeKind = Literal["process", "docker", "cloud_run"]
AgentKind = Literal["elizaos", "reference"]
ELIZAOS_VERSION = "1.7.2"  # pinned in local_emulator/elizaos/package.json
StoreKind = Literal["local", "gcs", "supabase"]



# gs://bucket[/prefix]: bucket names as Cloud Storage allows them (lowercase, digits, - _ .).
_GS_URI = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?")
_ORIGIN = re.compile(r"https?://[^/\s]+")


class ConfigurationError(RuntimeError):
    """Settings the platform cannot start with; the message names every variable to set or fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".paradyze"), alias="PARADYZE_HOME")
    instance: str = Field(default="local", alias="PARADYZE_INSTANCE")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    db_pool_max: int = Field(default=20, alias="PARADYZE_DB_POOL_MAX")
    # Set by the deploy (the newest migration it applied): the functions then never migrate, and
    # refuse to serve (503) while the database is behind it. Unset, they apply the migrations.
    schema_version: str | None = Field(default=None, pattern=r"^\d{14}$", alias="PARADYZE_SCHEMA_VERSION")

    jwt_secret: SecretStr | None = Field(default=None, alias="SUPABASE_JWT_SECRET")
    # Supabase's issuer, https://<project ref>.supabase.co/auth/v1; when set, user tokens must name it.
    jwt_issuer: str | None = Field(default=None, alias="SUPABASE_JWT_ISSUER")
    # Admin tokens are minted on demand (python -m local_emulator.admin_token) and live this long at most.
    admin_token_ttl_hours: float = Field(default=12.0, gt=0, le=168, alias="PARADYZE_ADMIN_TOKEN_TTL_HOURS")
    secrets_key: SecretStr | None = Field(default=None, alias="PARADYZE_SECRETS_KEY")

    # Per-user limits, counted in Postgres so they hold across every function instance.
    # Agents a user may have: running (or starting), and in total.
    agent_quota_running: int = Field(default=25, ge=0, alias="PARADYZE_AGENT_QUOTA_RUNNING")
    agent_quota_total: int = Field(default=100, ge=0, alias="PARADYZE_AGENT_QUOTA_TOTAL")
    # Requests of one user being served at once, over all functions.
    user_concurrency: int = Field(default=16, ge=1, alias="PARADYZE_USER_CONCURRENCY")
    # create_agent and send_message calls per user: at most N in any window of the period (seconds).
    create_agent_rate: int = Field(default=10, ge=1, alias="PARADYZE_CREATE_AGENT_RATE")
    create_agent_rate_period: float = Field(default=60.0, gt=0, alias="PARADYZE_CREATE_AGENT_RATE_PERIOD")
    send_message_rate: int = Field(default=60, ge=1, alias="PARADYZE_SEND_MESSAGE_RATE")
    send_message_rate_period: float = Field(default=60.0, gt=0, alias="PARADYZE_SEND_MESSAGE_RATE_PERIOD")

    runtime: RuntimeKind = Field(default="process", alias="PARADYZE_RUNTIME")
    # Which agent server runs: the real ElizaOS (the product) or the reference agent (a fast test double).
    agent: AgentKind = Field(default="elizaos", alias="PARADYZE_AGENT")
    # Where local_emulator/elizaos.sh installed the pinned ElizaOS server (bun and node_modules).
    elizaos_home: Path | None = Field(default=None, alias="PARADYZE_ELIZAOS_HOME")
    xdg_cache_home: Path | None = Field(default=None, alias="XDG_CACHE_HOME")
    # The agent command for the process runtime. "{character}" and "{port}" are substituted;
    # the default runs the reference agent. The real ElizaOS CLI drops in with e.g.
    # PARADYZE_AGENT_COMMAND='elizaos start --character {character} --port {port}'.
    agent_command: str | None = Field(default=None, alias="PARADYZE_AGENT_COMMAND")
    agent_host: str = Field(default="127.0.0.1", alias="PARADYZE_AGENT_HOST")
    # ElizaOS 1.7.2 answers health 6-15 s after start on an idle 2-core host, several times that
    # while other agents boot: the timeout is for a loaded host, not the typical start.
    agent_start_timeout: float = Field(default=120.0, alias="PARADYZE_AGENT_START_TIMEOUT")
    # Agent servers booting at once on this host (process runtime); more starts wait their turn.
    agent_start_concurrency: int = Field(default=max(1, os.cpu_count() or 1),
                                         alias="PARADYZE_AGENT_START_CONCURRENCY")
    agent_stop_grace: float = Field(default=5.0, alias="PARADYZE_AGENT_STOP_GRACE")
    # ElizaOS on the process runtime: "shared" runs each owner's agents in one server of the owner's
    # own (runtimes/shared_hosts.py), "own" gives every agent a server of its own.
    agent_hosting: Literal["shared", "own"] = Field(default="shared", alias="PARADYZE_AGENT_HOSTING")
    # Servers that have loaded ElizaOS and wait to be claimed by an owner (shared hosting).
    agent_pool: int = Field(default=1, ge=0, le=16, alias="PARADYZE_AGENT_POOL")
    drain_timeout: float = Field(default=10.0, alias="PARADYZE_DRAIN_TIMEOUT")
    # An admin connection to the Postgres server that holds each Cloud Run agent's own database.
    agent_database_url: SecretStr | None = Field(default=None, alias="PARADYZE_AGENT_DATABASE_URL")
    agent_health_path: str = Field(default="/api/server/health", alias="PARADYZE_AGENT_HEALTH_PATH")

    # Docker runtime
    docker_image: str = Field(default="paradyze/reference-agent:latest", alias="PARADYZE_DOCKER_IMAGE")
    docker_agent_port: int = Field(default=3000, alias="PARADYZE_DOCKER_AGENT_PORT")
    docker_character_path: str = Field(
        default="/app/characters/default.character.json", alias="PARADYZE_DOCKER_CHARACTER_PATH"
    )
    docker_memory: str = Field(default="512m", alias="PARADYZE_DOCKER_MEMORY")
    docker_cpus: float = Field(default=1.0, alias="PARADYZE_DOCKER_CPUS")

    # Crash handling: after max_restarts crashes within restart_window seconds, status -> error.
    max_restarts: int = Field(default=3, alias="PARADYZE_MAX_RESTARTS")
    restart_window: float = Field(default=600.0, alias="PARADYZE_RESTART_WINDOW")

    store: StoreKind = Field(default="local", alias="PARADYZE_STORE")
    # Character stores: GCS (an endpoint override points the client at an emulator or fake and
    # sends no credentials) and Supabase Storage (the service role key bypasses storage RLS).
    gcs_bucket: str | None = Field(default=None, alias="PARADYZE_GCS_BUCKET")
    gcs_prefix: str = Field(default="", alias="PARADYZE_GCS_PREFIX")
    gcs_api_endpoint: str | None = Field(default=None, alias="PARADYZE_GCS_API_ENDPOINT")
    supabase_url: str | None = Field(default=None, alias="SUPABASE_URL")
    supabase_service_key: SecretStr | None = Field(default=None, alias="SUPABASE_SERVICE_ROLE_KEY")
    supabase_bucket: str = Field(default="character-files", alias="PARADYZE_SUPABASE_BUCKET")
    backup_dir: Path | None = Field(default=None, alias="PARADYZE_BACKUP_DIR")
    # Where archives go: the backup folder when unset, or gs://bucket/prefix (Google Cloud Storage).
    backup_uri: str | None = Field(default=None, alias="PARADYZE_BACKUP_URI")

    # Google Cloud (Cloud Run runtime, Cloud Scheduler sync, GCS store)
    gcp_project: str | None = Field(default=None, alias="GOOGLE_CLOUD_PROJECT")
    gcp_region: str = Field(default="us-central1", alias="PARADYZE_GCP_REGION")
    # Points the Cloud Run Admin API client at another endpoint (a local fake) with anonymous credentials.
    cloud_run_api_endpoint: str | None = Field(default=None, alias="PARADYZE_CLOUD_RUN_API_ENDPOINT")
    # The same for Secret Manager, where each Cloud Run agent's sensitive environment is kept.
    secret_manager_api_endpoint: str | None = Field(default=None, alias="PARADYZE_SECRET_MANAGER_API_ENDPOINT")
    # The service account Cloud Run agents run as: it may read each agent's secret, granted per secret.
    # Unset, they run as the project's default compute account, which then needs that access itself.
    cloud_run_agent_account: str | None = Field(default=None, alias="PARADYZE_CLOUD_RUN_AGENT_ACCOUNT")
    # Agents on Cloud Run are private: only this service account (the platform's) may call them,
    # with a Google ID token. PARADYZE_CLOUD_RUN_PUBLIC=true deploys them open to anyone instead.
    cloud_run_invoker: str | None = Field(default=None, alias="PARADYZE_CLOUD_RUN_INVOKER")
    cloud_run_public: bool = Field(default=False, alias="PARADYZE_CLOUD_RUN_PUBLIC")
    # Host suffixes of agent URLs that are called with a Google ID token (Cloud Run's own domain).
    id_token_hosts: str = Field(default=".run.app", alias="PARADYZE_ID_TOKEN_HOSTS")
    scheduler_backend: Literal["local", "cloud"] = Field(default="local", alias="PARADYZE_SCHEDULER")
    scheduler_api_endpoint: str | None = Field(default=None, alias="PARADYZE_SCHEDULER_API_ENDPOINT")
    # Cloud Scheduler calls with a Google-signed OIDC token of this service account, and the console on
    # Cloud Run with one of its own; both are admins. The audience their tokens must name (the function
    # services' custom audience; default: PARADYZE_PUBLIC_URL).
    scheduler_service_account: str | None = Field(default=None, alias="PARADYZE_SCHEDULER_SERVICE_ACCOUNT")
    console_service_account: str | None = Field(default=None, alias="PARADYZE_CONSOLE_SERVICE_ACCOUNT")
    scheduler_oidc_audience: str | None = Field(default=None, alias="PARADYZE_SCHEDULER_OIDC_AUDIENCE")
    google_certs_url: str = Field(
        default="https://www.googleapis.com/oauth2/v1/certs", alias="PARADYZE_GOOGLE_CERTS_URL"
    )
    scheduler_tick_seconds: float = Field(default=15.0, alias="PARADYZE_SCHEDULER_TICK")
    idle_sweep_cron: str = Field(default="*/5 * * * *", alias="PARADYZE_IDLE_SWEEP_CRON")
    backup_cron: str = Field(default="0 3 * * 0", alias="PARADYZE_BACKUP_CRON")
    # Retention, applied by the idle sweep: events by age and by count per agent; backups by count,
    # none younger than backup_min_age_days (see README, Retention). Character versions are never pruned.
    event_keep_days: int = Field(default=90, ge=1, alias="PARADYZE_EVENT_KEEP_DAYS")
    event_keep_per_agent: int = Field(default=1000, ge=1, alias="PARADYZE_EVENT_KEEP_PER_AGENT")
    backup_keep: int = Field(default=10, ge=1, alias="PARADYZE_BACKUP_KEEP")
    backup_min_age_days: int = Field(default=7, ge=0, alias="PARADYZE_BACKUP_MIN_AGE_DAYS")
    health_cron: str = Field(default="*/2 * * * *", alias="PARADYZE_HEALTH_CRON")
    platform_timezone: str = Field(default="UTC", alias="PARADYZE_TIMEZONE")

    cors_origins: str = Field(default="*", alias="PARADYZE_CORS_ORIGINS")
    public_url: str = Field(default="http://127.0.0.1:8080", alias="PARADYZE_PUBLIC_URL")
    # Telemetry (paradyze/telemetry): local = Prometheus /metrics and a trace file; cloud = Cloud
    # Monitoring and Cloud Trace; off = none. Logs are JSON lines (Cloud Logging) unless text.
    telemetry: Literal["local", "cloud", "off"] = Field(default="local", alias="PARADYZE_TELEMETRY")
    log_format: Literal["json", "text"] = Field(default="json", alias="PARADYZE_LOG_FORMAT")
    trace_file: Path | None = Field(default=None, alias="PARADYZE_TRACE_FILE")
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1, alias="PARADYZE_TRACE_SAMPLE_RATIO")
    metrics_export_interval: float = Field(default=60.0, ge=10, alias="PARADYZE_METRICS_EXPORT_INTERVAL")
    monitoring_api_endpoint: str | None = Field(default=None, alias="PARADYZE_MONITORING_API_ENDPOINT")
    trace_api_endpoint: str | None = Field(default=None, alias="PARADYZE_TRACE_API_ENDPOINT")
    service_name: str = Field(default="paradyze", alias="K_SERVICE")  # set by Cloud Run and Cloud Functions
    # Names a step after which the process exits at once; only for fault-injection tests.
    crash_after: str | None = Field(default=None, alias="PARADYZE_TEST_CRASH_AFTER")

    # The platform's own environment as it was at start, for the few variables an agent inherits.
    _environ: dict[str, str] = PrivateAttr(default_factory=lambda: dict(os.environ))
    _generated: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)

    def inherited_env(self, names: tuple[str, ...]) -> dict[str, str]:
        """The platform's values of these variables (those that are set); nothing else leaves Settings."""
        return {name: self._environ[name] for name in names if name in self._environ}

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        """Every backend chosen has what it needs: checked once, when the functions start."""
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def problems(self) -> list[str]:
        """What is missing or malformed, one sentence per variable."""
        out: list[str] = []

        def need(variable: str, value: object, because: str) -> None:
            if value is None or value == "":
                out.append(f"{variable} is required {because}")

        if self.store == "gcs":
            need("PARADYZE_GCS_BUCKET", self.gcs_bucket, "with PARADYZE_STORE=gcs (the bucket for character files)")
        if self.store == "supabase":
            need("SUPABASE_URL", self.supabase_url, "with PARADYZE_STORE=supabase")
            need("SUPABASE_SERVICE_ROLE_KEY", self.supabase_service_key, "with PARADYZE_STORE=supabase")
        if self.runtime == "cloud_run":
            need("GOOGLE_CLOUD_PROJECT", self.gcp_project, "with PARADYZE_RUNTIME=cloud_run")
            if not self.cloud_run_public:
                need("PARADYZE_CLOUD_RUN_INVOKER", self.cloud_run_invoker,
                     "with PARADYZE_RUNTIME=cloud_run (the service account that calls agents;"
                     " or PARADYZE_CLOUD_RUN_PUBLIC=true)")
        if self.scheduler_backend == "cloud":
            need("GOOGLE_CLOUD_PROJECT", self.gcp_project, "with PARADYZE_SCHEDULER=cloud")
            need("PARADYZE_SCHEDULER_SERVICE_ACCOUNT", self.scheduler_service_account,
                 "with PARADYZE_SCHEDULER=cloud (the account Cloud Scheduler signs its calls as)")
        if self.telemetry == "cloud":
            need("GOOGLE_CLOUD_PROJECT", self.gcp_project, "with PARADYZE_TELEMETRY=cloud")
        if self.backup_uri and not _GS_URI.fullmatch(self.backup_uri):
            out.append(f"PARADYZE_BACKUP_URI must look like gs://bucket/prefix, not {self.backup_uri!r}")
        bad_origins = [o.strip() for o in self.cors_origins.split(",")
                       if o.strip() and o.strip() != "*" and not _ORIGIN.fullmatch(o.strip())]
        if bad_origins:
            out.append(f"PARADYZE_CORS_ORIGINS holds {', '.join(map(repr, bad_origins))}: each entry must be * or"
                       " an origin like https://app.example.com (no path)")
        try:
            ZoneInfo(self.platform_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(f"PARADYZE_TIMEZONE {self.platform_timezone!r} is not an IANA time zone")
        return list(dict.fromkeys(out))

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    @property
    def instance_key(self) -> str:
        """Names this platform instance on shared hosts: two state folders never adopt each other's agents."""
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:8]
        return f"{self.instance}-{digest}"

    @property
    def character_dir(self) -> Path:
        return self.state_dir / "character-files"

    @property
    def backups_dir(self) -> Path:
        return (self.backup_dir or self.state_dir / "backups").resolve()

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def elizaos_dir(self) -> Path:
        """The pinned ElizaOS install: the same default local_emulator/elizaos.sh installs into."""
        if self.elizaos_home is not None:
            return self.elizaos_home.resolve()
        if os.geteuid() == 0:
            return Path("/opt/paradyze") / f"elizaos-{ELIZAOS_VERSION}"
        cache = self.xdg_cache_home or Path.home() / ".cache"
        return cache / "paradyze" / f"elizaos-{ELIZAOS_VERSION}"

    def model_env(self) -> dict[str, str]:
        """The platform's model provider variables that are set (agent_env decides which agent gets which)."""
        return {name: os.environ[name] for name in PLATFORM_MODEL_VARS if os.environ.get(name)}

    def agent_home(self, agent_id: str) -> Path:
        """The agent's own folder: its working directory and its memory (ElizaOS's database)."""
        return self.state_dir / "agents" / agent_id

    def jwt_secret_value(self) -> str:
        """The JWT secret; generated once into the state folder when none is configured."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return self._generated_secret("jwt-secret")

    def secrets_key_value(self) -> str:
        if self.secrets_key is not None:
            return self.secrets_key.get_secret_value()
        return self._generated_secret("secrets-key", fernet=True)

    def _generated_secret(self, name: str, *, fernet: bool = False) -> str:
        # Read once per state folder, not on every request: a generated secret is written once, never changed.
        key = (str(self.home), name)
        value = self._generated.get(key)
        if value is None:
            value = self._generated[key] = generate_once(self.state_dir / name, fernet=fernet)
        return value


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The platform's settings from the environment; raises ConfigurationError naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """pydantic's errors as lines a person deploying the platform can act on (values are not shown)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        if err["loc"]:
            lines.append(f"{'.'.join(map(str, err['loc']))}: {err['msg']}")
        else:
            lines.extend(str(err["msg"]).removeprefix("Value error, ").splitlines())
    return "Paradyze cannot start with these settings:\n" + "\n".join(f"  - {line}" for line in lines)
