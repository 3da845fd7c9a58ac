"""Operator settings: where state, backups and tenants live, and how to reach platforms.

Precedence, highest first:
1. environment variables ``OSP_OPS_<FIELD>`` (e.g. ``OSP_OPS_STATE_URL``), and
   ``OSP_OPS_PORTAL_<FIELD>`` for the self-service portal's (``OSP_OPS_PORTAL_SMTP_HOST``);
2. the config file: ``--config FILE``, else ``$OSP_OPS_CONFIG``, else ``./osp-ops.yaml`` if
   present (the portal's under its ``portal:`` mapping);
3. the defaults below (embedded: SQLite state, local backup directory, local host platform).

Relative paths (``tenants_dir``, ``data_dir``, ...) are resolved once, at load: from the
config file's directory when there is a config file (for its values and the defaults),
else from the current directory; so a scheduled run started in ``/`` finds the same
tenants as one started in the checkout.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from osp_ops.domain.errors import ConfigError, Problem, SpecError
from osp_ops.domain.names import OWNED, Owned, reserved_problems
from osp_ops.domain.spec import SLUG_MAX

ENV_PREFIX = "OSP_OPS_"
# The kernel's limit on a Unix socket path, and the longest socket the hosts platform
# puts under host_root: a tenant's app socket with the longest slug.
UNIX_SOCKET_MAX = 107
LONGEST_SOCKET_SUFFIX = f"/srv/osp-ops/{'x' * SLUG_MAX}/run/app.sock"
PORTAL_ENV_PREFIX = f"{ENV_PREFIX}PORTAL_"
DEFAULT_CONFIG_FILE = Path("osp-ops.yaml")


class TlsMode(StrEnum):
    """How instances get their certificates."""

    local_ca = "local-ca"  # a CA osp-ops creates in the data directory (embedded default)
    acme = "acme"  # Let's Encrypt or another ACME CA through certbot / cert-manager
    none = "none"  # plain HTTP, for tests behind another TLS terminator


def _database_of(url: str | None) -> str | None:
    """The database a PostgreSQL URL or ``key=value`` DSN names (None otherwise)."""
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        is_pg = parts.scheme.split("+")[0] in ("postgresql", "postgres")
        return parts.path.lstrip("/") or None if is_pg else None
    match = re.search(r"(?:^|\s)dbname\s*=\s*'?([^'\s]+)", url)
    return match.group(1) if match else None


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "osp-ops"


def _default_tools_dir() -> Path:
    # Not below data_dir: one install serves every data directory (tests use many).
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "osp-ops" / "bin"


class PortalSettings(BaseSettings):
    """Settings of the self-service portal (``osp-ops web serve``, ``osp-ops request``):
    public address, SMTP, consent text, limits. ``Settings.portal``: environment
    ``OSP_OPS_PORTAL_<FIELD>`` over the config file's ``portal:`` mapping over these."""

    model_config = SettingsConfigDict(env_prefix=PORTAL_ENV_PREFIX, extra="forbid", frozen=True)

    public_url: str = Field(
        "http://127.0.0.1:8080", description="The portal's address, used in emailed links."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server that sends the portal's mail.")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = Field("portal@localhost", description="Sender of the portal's mail.")
    ops_email: str | None = Field(None, description="Told of every confirmed request.")
    consent_version: str = Field("2026-01", description="Version of the consent text shown.")
    dns_target: str | None = Field(
        None, description="CNAME target for a city's own domain (default: the base domain)."
    )
    requests_per_ip_per_hour: int = Field(5, ge=1, description="Requests one address may make.")
    requests_per_email_per_hour: int = Field(3, ge=1)
    posts_per_ip_per_hour: int = Field(60, ge=1, description="Form posts, valid or not.")
    logins_per_15_minutes: int = Field(5, ge=1, description="Login attempts per address and user.")

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry the Secure flag when the portal is served over HTTPS."""
        return self.public_url.startswith("https://")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the config file's portal mapping (Settings passes it in).
        return (env_settings, init_settings)


class Settings(BaseSettings):
    """Effective operator settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir, description="Local state and keys.")
    tenants_dir: Path = Field(Path("tenants"), description="Directory of tenant spec files.")
    state_url: str | None = Field(
        None, description="SQLAlchemy URL of the state DB; SQLite in data_dir if unset."
    )
    backup_url: str | None = Field(
        None, description="file:///dir or s3://bucket/prefix; data_dir/backups if unset."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (MinIO, Ceph); AWS if unset."
    )
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_object_lock_days: int = Field(0, ge=0, description="Object lock retention; 0 disables.")
    default_platform: Literal["hosts", "kubernetes"] = Field(
        "hosts", description="Platform of tenants whose spec does not say."
    )
    inventory: Path | None = Field(
        None, description="Ansible inventory for the hosts platform; localhost if unset."
    )
    host_root: str = Field("/", description="Prefix of every path the hosts platform writes.")

    @field_validator("host_root")
    @classmethod
    def _room_for_sockets(cls, value: str) -> str:
        """Unix socket paths (supervisord's, each tenant's app) must fit in 107 bytes."""
        longest = f"{value.rstrip('/')}{LONGEST_SOCKET_SUFFIX}"
        if len(longest.encode()) > UNIX_SOCKET_MAX:
            room = UNIX_SOCKET_MAX - len(LONGEST_SOCKET_SUFFIX)
            raise ValueError(
                f"too long for the Unix sockets under it: at most {room} characters, "
                f"got {len(value.rstrip('/'))}"
            )
        return value

    http_port: int = Field(80, ge=1, le=65535, description="nginx HTTP port on hosts.")
    https_port: int = Field(443, ge=1, le=65535, description="nginx HTTPS port on hosts.")
    base_domain: str = Field("localhost", description="Default domain of new tenants' hosts.")
    tls_mode: TlsMode = Field(TlsMode.local_ca, description="How instances get certificates.")
    acme_email: str | None = Field(None, description="Contact address for ACME accounts.")
    master_key_file: Path | None = Field(
        None, description="Key that encrypts stored secrets; data_dir/master.key if unset."
    )
    recovery_public_key: str | None = Field(
        None,
        description="age public key of the ops recovery key, added to every backup; "
        "data_dir/recovery.pub (`osp-ops backup recovery-key`) if unset.",
    )
    kube_context: str | None = Field(None, description="Default kubeconfig context.")
    kubeconfig: Path | None = Field(None, description="kubeconfig file; $KUBECONFIG if unset.")
    platform_db_admin_dsn: SecretStr | None = Field(
        None, description="Admin DSN of the shared PostgreSQL of Kubernetes tenants."
    )
    tools_dir: Path = Field(
        default_factory=_default_tools_dir,
        description="Where scripts/install-helm (run by scripts/install-deps) puts the pinned helm.",
    )
    helm_binary: str | None = Field(
        None, description="helm executable; tools_dir/helm if unset and installed, else PATH."
    )
    app_storage: Literal["volume", "s3"] = Field(
        "volume",
        description="Uploads of Kubernetes tenants: the chart's volume, or a bucket per "
        "tenant that osp-ops creates, credentials, backs up and restores (s3).",
    )
    app_s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint of the tenants' buckets, as osp-ops reaches it."
    )
    app_s3_pod_endpoint_url: str | None = Field(
        None, description="The same endpoint as the pods reach it; app_s3_endpoint_url if unset."
    )
    app_s3_region: str = Field("us-east-1", description="Region of the tenants' buckets.")
    app_s3_access_key_id: str | None = Field(
        None, description="Access key osp-ops and the apps use for the tenants' buckets."
    )
    app_s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret of app_s3_access_key_id."
    )
    app_s3_bucket_prefix: str = Field(
        "osp-", description="Tenant buckets are named <prefix><slug>."
    )
    restore_grace_days: float = Field(
        7.0,
        ge=0,
        description="Days a restore keeps the data it replaced before `backup prune` drops it.",
    )
    deleted_backup_days: float = Field(
        90.0,
        ge=0,
        description="Days a deleted tenant's backups (and their key) are kept: until then "
        "`backup restore SLUG --to NEW` reads them; then `backup prune` destroys them.",
    )
    audit_anchor_every: int = Field(
        20,
        ge=1,
        description="Audit rows between two anchors of the audit head in the backup store "
        "(`audit verify` writes one too).",
    )
    lease_ttl_seconds: float = Field(60.0, gt=0, description="Tenant lease time to live.")
    step_max_attempts: int = Field(3, ge=1, description="Attempts of a step on temporary errors.")
    retry_base_delay: float = Field(1.0, ge=0, description="First retry delay, doubled each time.")
    log_level: str = Field("INFO", description="Logging level.")
    # Validated from {} when the file has no portal mapping: the environment still applies.
    portal: PortalSettings = Field(
        default_factory=dict,
        validate_default=True,
        description="The self-service portal's settings (OSP_OPS_PORTAL_<FIELD>).",
    )

    @property
    def effective_state_url(self) -> str:
        """The state DB URL, defaulting to SQLite in the data directory."""
        return self.state_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def effective_helm_binary(self) -> str:
        """helm_binary, else the pinned helm scripts/install-helm installed, else ``helm``."""
        if self.helm_binary:
            return self.helm_binary
        installed = self.tools_dir / "helm"
        return str(installed) if installed.is_file() else "helm"

    @property
    def effective_backup_url(self) -> str:
        """The backup store URL, defaulting to a local directory."""
        return self.backup_url or f"file://{self.data_dir / 'backups'}"

    def owned_names(self) -> Owned:
        """Names no tenant may take: ``OWNED`` plus the state and admin databases and the
        backup bucket these settings name."""
        dsn = self.platform_db_admin_dsn
        admin = dsn.get_secret_value() if dsn is not None else None
        databases = [_database_of(self.state_url), _database_of(admin)]
        backup = urlsplit(self.backup_url or "")
        bucket = backup.netloc if backup.scheme == "s3" else ""
        return OWNED.with_databases(*filter(None, databases)).with_buckets(bucket)

    def reserved_problems(self, slug: str) -> list[str]:
        """Why ``slug`` cannot name a tenant under these settings (empty when it can)."""
        return reserved_problems(slug, self.owned_names(), bucket_prefix=self.app_s3_bucket_prefix)

    def app_s3_keys(self) -> tuple[str, str]:
        """(access key id, secret) of the tenants' buckets; ConfigError if one is missing."""
        key, secret = self.app_s3_access_key_id, self.app_s3_secret_access_key
        if not key or secret is None:
            raise ConfigError(
                "app_storage is s3: set app_s3_access_key_id and app_s3_secret_access_key"
            )
        return key, secret.get_secret_value()

    @property
    def effective_recovery_public_key(self) -> str | None:
        """The recovery key's public half: the setting, else ``data_dir/recovery.pub``."""
        if self.recovery_public_key:
            return self.recovery_public_key
        try:
            return (self.data_dir / "recovery.pub").read_text("utf-8").strip() or None
        except FileNotFoundError:
            return None

    @property
    def effective_master_key_file(self) -> Path:
        """The master key path."""
        return self.master_key_file or self.data_dir / "master.key"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then what the loader passes in (the config file).
        return (env_settings, init_settings)


SECRET_FIELDS = frozenset({"platform_db_admin_dsn", "app_s3_secret_access_key"})


def config_file_path(explicit: Path | None) -> Path | None:
    """The config file in effect: explicit, $OSP_OPS_CONFIG, or ./osp-ops.yaml if present."""
    if explicit is not None:
        return explicit
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(config_file: Path | None = None) -> tuple[Settings, dict[str, str]]:
    """Load settings and say where each value came from (env, file or default)."""
    path = config_file_path(config_file)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text("utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping")
        file_values = _underscored(loaded)
        if isinstance(file_values.get("portal"), dict):
            file_values["portal"] = _underscored(file_values["portal"])
    try:
        settings = Settings(**file_values)
    except ValidationError as e:
        problems = [
            Problem(
                f"{path or 'environment'}: {'.'.join(str(p) for p in err['loc'])}",
                err["msg"].removeprefix("Value error, "),
            )
            for err in e.errors()
        ]
        raise SpecError(problems, subject="settings") from None
    # Environment names match case-insensitively, as pydantic-settings reads them.
    env_names = {k.upper(): k for k in os.environ}

    def source(env_name: str, in_file: bool) -> str:
        env = env_names.get(env_name.upper())
        return f"env {env}" if env is not None else f"file {path}" if in_file else "default"

    sources = {
        name: source(f"{ENV_PREFIX}{name}", name in file_values)
        for name in Settings.model_fields
        if name != "portal"
    }
    portal_file = file_values.get("portal") or {}
    for name in PortalSettings.model_fields:
        sources[f"portal.{name}"] = source(f"{PORTAL_ENV_PREFIX}{name}", name in portal_file)
    return _absolute_paths(settings, sources, path), sources


def _underscored(values: dict[Any, Any]) -> dict[str, Any]:
    """A config mapping with ``-`` in its keys read as ``_``."""
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def _absolute_paths(settings: Settings, sources: dict[str, str], path: Path | None) -> Settings:
    """Relative paths made absolute, so that cron and systemd (cwd ``/``) see the same
    tenants: from the config file's directory for values of the file and defaults when
    there is a file, else from the current directory."""
    file_dir = path.resolve().parent if path is not None else None
    updates: dict[str, Path] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if not isinstance(value, Path) or value.is_absolute():
            continue
        base = file_dir if file_dir is not None and not sources[name].startswith("env") else None
        updates[name] = (base / value) if base is not None else value.absolute()
    return settings.model_copy(update=updates) if updates else settings


def redacted(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with secrets replaced by '***'."""
    data = settings.model_dump(mode="json")
    for name in SECRET_FIELDS:
        if data.get(name) is not None:
            data[name] = "***"
    # The portal's settings by dotted name, as load_settings names their sources.
    for name, value in data.pop("portal").items():
        data[f"portal.{name}"] = "***" if name == "smtp_password" and value else value
    data["effective_state_url"] = _redact_url(settings.effective_state_url)
    data["effective_backup_url"] = settings.effective_backup_url
    data["effective_recovery_public_key"] = settings.effective_recovery_public_key
    if data.get("state_url"):
        data["state_url"] = _redact_url(data["state_url"])
    return data


def _redact_url(url: str) -> str:
    """Hide the password of a URL like postgresql://user:pw@host/db."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
