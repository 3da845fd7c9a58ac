"""`osp-ops tenant render SLUG --out DIR`: the tenant's Kubernetes manifests, for GitOps.

Writes ``DIR/<slug>/NN-<kind>-<name>.yaml``: the namespace and every object of the
chart, exactly as ``tenant apply`` would apply them (labels, hash annotations). The
Secret is left out: secret values never leave osp-ops' encrypted store. Files of an
earlier render that are no longer produced are removed, so the directory can be
committed as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from osp_ops.cli.common import context, slug_argument
from osp_ops.cli.output import console
from osp_ops.domain.errors import PlatformError, SecretError
from osp_ops.render.manifests import secret_digest


def render(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant slug (a Kubernetes tenant).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write <slug>/*.yaml into.")],
) -> None:
    """Write a Kubernetes tenant's manifests to a directory (no secret values)."""
    ctx = context(c)
    spec = ctx.specs.load(slug)
    if spec.platform.kind != "kubernetes":
        raise PlatformError(f"{slug} runs on the {spec.platform.kind} platform, not kubernetes")
    platform = ctx.platform(spec)
    from osp_ops.platforms.kubernetes import KubernetesPlatform  # only when rendering

    if not isinstance(platform, KubernetesPlatform):
        platform = KubernetesPlatform(settings=ctx.settings, catalog=ctx.catalog)
    secret_hash = None
    try:
        secrets = ctx.secrets.all_for(slug)
        if secrets and ctx.settings.platform_db_admin_dsn is not None:
            secret_hash = secret_digest(platform.secret_data(spec, secrets))
    except (SecretError, PlatformError):
        secret_hash = None
    objects = platform.manifests(spec, secret_hash=secret_hash)
    target = out / slug
    target.mkdir(parents=True, exist_ok=True)
    written = set()
    for n, obj in enumerate(objects, start=1):
        name = f"{n:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (target / name).write_text(yaml.safe_dump(obj, sort_keys=False), "utf-8")
        written.add(name)
    for stale in target.glob("*.yaml"):
        if stale.name not in written:
            stale.unlink()
    console.print(f"wrote {len(objects)} manifests to {target} (the Secret is not written)")
    if secret_hash is None:
        console.print(
            "[yellow]no secrets for this tenant yet: pod templates lack the secret digest "
            "annotation that `tenant apply` adds[/]"
        )
