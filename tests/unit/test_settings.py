"""Operator settings: env over file over default; `config show` names sources, hides secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from osp_ops.domain.errors import ConfigError, SpecError
from osp_ops.settings import ENV_PREFIX, load_settings, redacted

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OSP_OPS_* from the caller's environment, and no ./osp-ops.yaml."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_file_or_env() -> None:
    s, sources = load_settings(None)
    assert s.lease_ttl_seconds == 60.0
    assert s.effective_state_url == f"sqlite:///{s.data_dir / 'state.db'}"
    assert set(sources.values()) == {"default"}


def test_env_over_file_over_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(
        tmp_path / "c.yaml", "http_port: 8080\nhttps-port: 8443\nbase_domain: file.example\n"
    )
    monkeypatch.setenv("OSP_OPS_HTTP_PORT", "9090")
    s, sources = load_settings(cfg)
    assert (s.http_port, s.https_port, s.base_domain, s.s3_region) == (
        9090, 8443, "file.example", "us-east-1",
    )  # fmt: skip
    assert sources["http_port"] == "env OSP_OPS_HTTP_PORT"
    assert sources["https_port"] == f"file {cfg}"
    assert sources["base_domain"] == f"file {cfg}"
    assert sources["s3_region"] == "default"


def test_config_file_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "osp-ops.yaml", "base_domain: cwd.example\n")
    assert load_settings(None)[0].base_domain == "cwd.example"
    env_file = write(tmp_path / "env.yaml", "base_domain: env.example\n")
    monkeypatch.setenv("OSP_OPS_CONFIG", str(env_file))
    assert load_settings(None)[0].base_domain == "env.example"
    explicit = write(tmp_path / "x.yaml", "base_domain: explicit.example\n")
    assert load_settings(explicit)[0].base_domain == "explicit.example"


def test_bad_values_name_the_file_and_field(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "http_port: 0\nlease_ttl_seconds: -1\ncolour: blue\n")
    with pytest.raises(SpecError) as exc:
        load_settings(cfg)
    locations = sorted(p.location for p in exc.value.problems)
    assert locations == [f"{cfg}: colour", f"{cfg}: http_port", f"{cfg}: lease_ttl_seconds"]
    assert exc.value.subject == "settings"


def test_bad_env_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSP_OPS_HTTP_PORT", "eighty")
    with pytest.raises(SpecError, match="http_port"):
        load_settings(None)


@pytest.mark.parametrize(
    ("text", "match"), [("a: [", "not valid YAML"), ("- 1\n", "must be a mapping")]
)
def test_broken_file(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(write(tmp_path / "c.yaml", text))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.yaml")


def test_redacted_hides_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSP_OPS_STATE_URL", "postgresql://ops:canary-pw-1@db/ops")
    monkeypatch.setenv("OSP_OPS_PLATFORM_DB_ADMIN_DSN", "postgresql://admin:canary-pw-2@db/x")
    s, _ = load_settings(None)
    text = json.dumps(redacted(s))
    assert "canary-pw" not in text
    assert redacted(s)["state_url"] == "postgresql://ops:***@db/ops"
    assert redacted(s)["platform_db_admin_dsn"] == "***"


def test_config_show_cli_sources_and_redaction(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "base_domain: file.example\nhttp_port: 8080\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env |= {
        "OSP_OPS_HTTP_PORT": "9090",
        "OSP_OPS_STATE_URL": "postgresql://ops:canary-pw-3@db.example/ops",
        "OSP_OPS_PLATFORM_DB_ADMIN_DSN": "postgresql://a:canary-pw-4@db.example/x",
    }
    out = subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", "--config", str(cfg), "config", "show", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert "canary-pw" not in out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["http_port"] == {"value": 9090, "source": "env OSP_OPS_HTTP_PORT"}
    assert data["base_domain"] == {"value": "file.example", "source": f"file {cfg}"}
    assert data["s3_region"]["source"] == "default"
    assert data["state_url"]["value"] == "postgresql://ops:***@db.example/ops"
    assert data["effective_state_url"]["source"] == "derived"


def test_env_names_match_case_insensitively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("osp_ops_http_port", "9091")
    s, sources = load_settings(None)
    assert s.http_port == 9091
    assert sources["http_port"] == "env osp_ops_http_port"


def test_relative_paths_resolve_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "srv"
    checkout.mkdir()
    cfg = write(checkout / "osp-ops.yaml", "data_dir: state\n")
    monkeypatch.chdir("/")  # as cron and systemd run
    s, _ = load_settings(cfg)
    assert s.tenants_dir == checkout / "tenants"  # the default, next to the file
    assert s.data_dir == checkout / "state"
    monkeypatch.setenv("OSP_OPS_TENANTS_DIR", "specs")  # the caller's: from the cwd
    assert load_settings(cfg)[0].tenants_dir == Path("/specs")
    monkeypatch.delenv("OSP_OPS_TENANTS_DIR")
    monkeypatch.chdir(tmp_path)
    assert load_settings(None)[0].tenants_dir == tmp_path / "tenants"


def test_a_host_root_too_long_for_unix_sockets_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # supervisord's socket and each tenant's app socket live under host_root; a path the
    # kernel cannot bind would only fail later, inside a playbook.
    monkeypatch.setenv("OSP_OPS_HOST_ROOT", "/tmp/" + "r" * 60)
    with pytest.raises(SpecError, match="host_root") as exc:
        load_settings(None)
    assert "Unix sockets" in exc.value.problems[0].message
    monkeypatch.setenv("OSP_OPS_HOST_ROOT", "/tmp/osp-k-ovzqh954/root")
    assert load_settings(None)[0].host_root == "/tmp/osp-k-ovzqh954/root"


def test_portal_settings_env_over_file_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "portal:\n  smtp-host: mail.example\n  smtp_port: 2525\n  smtp_password: canary-pw-5\n",
    )
    monkeypatch.setenv("OSP_OPS_PORTAL_SMTP_PORT", "587")
    s, sources = load_settings(cfg)
    assert (s.portal.smtp_host, s.portal.smtp_port, s.portal.mail_from) == (
        "mail.example", 587, "portal@localhost",
    )  # fmt: skip
    assert sources["portal.smtp_port"] == "env OSP_OPS_PORTAL_SMTP_PORT"
    assert sources["portal.smtp_host"] == f"file {cfg}"
    assert sources["portal.mail_from"] == "default"
    shown = redacted(s)
    assert shown["portal.smtp_port"] == 587 and shown["portal.smtp_password"] == "***"
    assert "canary-pw" not in json.dumps(shown)


def test_portal_settings_errors_name_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpecError, match=r"portal\.smtp_hots"):
        load_settings(write(tmp_path / "c.yaml", "portal:\n  smtp_hots: mail.example\n"))
    monkeypatch.setenv("OSP_OPS_PORTAL_SMTP_PORT", "0")
    with pytest.raises(SpecError, match=r"environment: portal\.smtp_port"):
        load_settings(None)
