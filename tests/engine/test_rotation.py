"""Tenant secret rotation (engine + fake platform, SQLite; the crash case runs the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from osp_ops.domain.errors import SpecError
from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.kinds import rotation
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings
from tests.factories import converge, fake_context, spec_data

pytestmark = pytest.mark.unit

SPEC = spec_data("lyon")


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", tenants_dir=tmp_path / "tenants", retry_base_delay=0
    )


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return fake_context(tmp_path)


def _create(ctx: Context) -> TenantSpec:
    spec = validate_spec(SPEC)
    converge(ctx, spec)
    return spec


def test_rotation_changes_only_the_named_secrets_and_pushes_them(ctx: Context) -> None:
    spec = _create(ctx)
    before = ctx.secrets.all_for("lyon")
    op, _ = request(ctx, rotation.KIND, spec, params={"names": ["db_password"]})
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    after = ctx.secrets.all_for("lyon")
    assert after["db_password"] != before["db_password"]
    assert after["admin_password"] == before["admin_password"]
    assert after["secret_key"] == before["secret_key"]
    assert sorted(after) == sorted(before)  # no staged copy left behind
    fake = ctx.platform(spec)
    assert isinstance(fake, FakePlatform)
    # The platform got the new value: the last provision/deploy calls came after it.
    names = [c[0] for c in fake.calls]
    assert names[-3:] == ["provision", "deploy", "task:bootstrap-admin"]
    audit = [e for e in ctx.audit.entries(tenant="lyon") if e.action == "secrets.rotated"]
    assert [e.details["names"] for e in audit] == [["db_password"]]
    assert before["db_password"] not in json.dumps([s.output for s in done.steps])
    assert after["db_password"] not in json.dumps([s.output for s in done.steps])


def test_unknown_secret_names_are_refused_naming_the_option() -> None:
    with pytest.raises(SpecError, match="--name"):
        rotation.check_names(["backup_identity"])
    assert rotation.check_names([]) == ["admin_password", "db_password", "secret_key"]


def test_a_crash_after_staging_keeps_the_staged_value(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
        "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(tmp_path / "platform.json"),
        "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
        "OSP_OPS_RETRY_BASE_DELAY": "0",
    }
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "lyon.yaml").write_text(yaml.safe_dump(SPEC))

    def cli(*args: str, failpoint: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *args],
            env={**env, "OSP_OPS_FAILPOINT": failpoint}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    assert cli("tenant", "create", "lyon").returncode == 0
    killed = cli("secrets", "rotate", "lyon", "--name", "secret_key",
                 failpoint="after-step:stage-secrets")  # fmt: skip
    assert killed.returncode == -9
    ctx = build_context(_settings(tmp_path), actor="test")
    staged = [n for n in ctx.secrets.names("lyon") if n.startswith("secret_key.next.")]
    assert len(staged) == 1
    value = ctx.secrets.get("lyon", staged[0])
    op = next(o for o in ctx.operations.recent(tenant="lyon") if o.kind == rotation.KIND)
    retried = cli("op", "retry", op.id)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert ctx.secrets.get("lyon", "secret_key") == value  # generated once, not twice
    assert not [n for n in ctx.secrets.names("lyon") if ".next." in n]
    assert value not in retried.stdout + retried.stderr + killed.stdout + killed.stderr
