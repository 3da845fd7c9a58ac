"""`osp-ops tenant render`: GitOps manifests (needs helm, no cluster), and the pure
manifest helpers (hashing, ordering, pruning) it shares with the apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from osp_ops.cli.main import State
from osp_ops.cli.render import render
from osp_ops.engine.context import build_context
from osp_ops.render import manifests as mf
from osp_ops.settings import Settings
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import OVERLAY, helm_binary

pytestmark = pytest.mark.integration


def test_render_writes_manifests_without_secret_values(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        tenants_dir=tmp_path / "tenants",
        helm_binary=helm_binary(),
        tls_mode="none",  # type: ignore[arg-type]
        platform_db_admin_dsn="postgresql://admin:pw@10.1.2.3:5432/postgres",  # type: ignore[arg-type]
    )
    ctx = build_context(settings, actor="test")
    (settings.data_dir / "kubernetes-values.yaml").write_text(yaml.safe_dump(OVERLAY))
    spec = kube_spec("lyon")
    ctx.specs.write(spec)
    ctx.secrets.ensure("lyon", "db_password", lambda: "very-secret-db-pw")
    ctx.secrets.ensure("lyon", "secret_key", lambda: "very-secret-key-base")
    ctx.secrets.ensure("lyon", "admin_password", lambda: "very-secret-admin")

    app = typer.Typer()

    @app.callback()
    def root(c: typer.Context) -> None:
        state = State()
        state._context = ctx
        c.obj = state

    app.command()(render)
    out = tmp_path / "gitops"
    (out / "lyon").mkdir(parents=True)
    (out / "lyon" / "99-stale.yaml").write_text("{}\n")
    result = CliRunner().invoke(app, ["render", "lyon", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (out / "lyon").iterdir())
    assert files[0] == "01-namespace-osp-lyon.yaml"
    assert "99-stale.yaml" not in files
    text = "".join(p.read_text() for p in (out / "lyon").iterdir())
    assert "very-secret" not in text
    assert "kind: Secret" not in text
    docs = [yaml.safe_load(p.read_text()) for p in sorted((out / "lyon").iterdir())]
    kinds = [d["kind"] for d in docs]
    assert kinds.index("Deployment") > kinds.index("ConfigMap")
    for d in docs:
        assert d["metadata"]["labels"]["osp-ops.io/tenant"] == "lyon"
        assert mf.HASH_ANNOTATION in d["metadata"]["annotations"]
    egress = next(d for d in docs if d["metadata"]["name"] == "decidim-allow-app-egress")
    assert {"ipBlock": {"cidr": "10.1.2.3/32"}} in egress["spec"]["egress"][0]["to"]


def test_plan_apply_skips_equal_hashes_and_prunes_the_rest() -> None:
    labels = {"osp-ops.io/tenant": "x"}
    cm = mf.finalize(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}},
        namespace="osp-x",
        labels=labels,
    )
    changed = mf.finalize({**cm, "data": {"k": "w"}}, namespace="osp-x", labels=labels)
    assert mf.applied_hash(cm) != mf.applied_hash(changed)
    live = {
        mf.Key("ConfigMap", "a"): cm,
        mf.Key("Job", "old-migration"): {"metadata": {"labels": labels}},
        mf.Key("Job", "task"): {"metadata": {"labels": {**labels, mf.TASK_LABEL: "t"}}},
    }
    plan = mf.plan_apply([cm], live)
    assert plan.apply == [] and plan.unchanged == [mf.Key("ConfigMap", "a")]
    assert plan.prune == [mf.Key("Job", "old-migration")]
    plan = mf.plan_apply([changed], live)
    assert [mf.key_of(o) for o in plan.apply] == [mf.Key("ConfigMap", "a")]
