"""Benchmark the Kubernetes platform on a fleet of tenants, against kubectl, in one run.

    python bench/fleet_apply.py --tenants 50
    python bench/fleet_apply.py --tenants 500 --workers 4

Starts a throwaway control plane (etcd, kube-apiserver, controller-manager, scheduler,
kwok with enough fake nodes) and PostgreSQL 15 from testbin, then:

1. create: ``provision`` + ``deploy`` of every tenant as the operator's ServiceAccount
   (namespace, database, Secret, chart objects; server-side dry run then apply), without
   waiting for rollouts (that is the cluster's time, not osp-ops');
2. kubectl: the same rendered manifests (of the first ``--kubectl-tenants``) applied by
   one ``kubectl apply --server-side`` into a parallel set of namespaces (``kb-<slug>``),
   for objects per second, then once more (its no-op);
3. wait until every tenant's Deployments are Available and migration Jobs Complete;
4. no-op reconcile: a fresh platform object (empty in-memory caches; the on-disk render
   cache is warm, as on a second run) runs ``provision`` + ``deploy`` of every tenant
   again: its time, its write count (target 0) and osp-ops' CPU (own + helm) per tenant.

Storage is S3-style in the values (no PersistentVolumes needed); pods never run (kwok).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tests.fixtures.kube as kube_fixture  # noqa: E402
from osp_ops.domain.catalog import default_catalog  # noqa: E402
from osp_ops.domain.spec import TenantSpec, validate_spec  # noqa: E402
from osp_ops.platforms.base import null_reporter  # noqa: E402
from osp_ops.platforms.kubernetes import Kube, KubernetesPlatform  # noqa: E402
from osp_ops.settings import Settings  # noqa: E402
from tests.fixtures.kube import KubeCluster  # noqa: E402
from tests.fixtures.postgres import PostgresServer  # noqa: E402

OVERLAY: dict[str, Any] = {
    "storage": {"type": "s3", "s3": {"bucket": "uploads", "endpoint": "http://10.0.0.9:9000"}},
    "networkPolicy": {"egress": {"s3": [{"cidr": "10.0.0.9/32", "ports": [9000]}]}},
}
SECRETS = {"db_password": "bench-pw", "secret_key": "k" * 64, "admin_password": "bench"}


def cpu() -> float:
    """CPU seconds of this process and its finished children (helm)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def spec_of(i: int) -> TenantSpec:
    slug = f"t{i:04d}"
    return validate_spec(
        {
            "slug": slug,
            "name": f"Commune {i}",
            "app": {"name": "decidim", "version": "0.28.4"},
            "hosts": {"primary": f"{slug}.bench.example.org"},
            "admin": {"name": "Admin", "email": f"admin@{slug}.example.org"},
            "platform": {"kind": "kubernetes"},
        }
    )


def helm_binary() -> str:
    found = os.environ.get("OSP_OPS_HELM") or shutil.which("helm")
    return found or str(Path.home() / ".cache" / "osp-ops" / "testbin" / "bin" / "helm")


def run_pool(workers: int, fn: Any, items: list[Any]) -> None:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(fn, x) for x in items]:
            f.result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tenants", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4, help="threads applying tenants")
    ap.add_argument("--kubectl", default=shutil.which("kubectl") or "/usr/bin/kubectl")
    ap.add_argument(
        "--kubectl-tenants",
        type=int,
        default=50,
        help="tenants whose manifests kubectl applies (its rate is per object)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    n = args.tenants

    base = Path(tempfile.mkdtemp(prefix="osp-ops-fleet-"))
    base.chmod(0o755)
    (base / "pg").mkdir()
    (base / "pg").chmod(0o755)
    pg = PostgresServer(base / "pg")
    # Each tenant runs 3 pods (+1 Job pod) requesting 0.4-0.65 CPU: 110 pods, 32 CPU a node.
    # Two Services per tenant: the test fixture's /24 service range holds ~125 tenants.
    kube_fixture.SERVICE_CIDR = "10.96.0.0/16"
    cluster = KubeCluster(base / "kube", nodes=max(1, n // 25 + 1))
    figures: dict[str, Any] = {"tenants": n, "workers": args.workers}
    try:
        pg.start()
        t0 = time.monotonic()
        cluster.start()
        figures["cluster_start_s"] = round(time.monotonic() - t0, 1)
        admin = Kube(cluster.api_client())
        for doc in yaml.safe_load_all((REPO / "deploy/rbac/operator.yaml").read_text()):
            admin.apply(doc, force=True)
        kubeconfig = cluster.kubeconfig_for_service_account(
            "osp-ops-system", "osp-ops", expiration_seconds=86400
        )
        settings = Settings(
            data_dir=base / "data",
            kubeconfig=kubeconfig,
            platform_db_admin_dsn=pg.dsn,  # type: ignore[arg-type]
            helm_binary=helm_binary(),
            tls_mode="none",  # type: ignore[arg-type]
        )
        settings.data_dir.mkdir()
        specs = [spec_of(i) for i in range(n)]
        catalog = default_catalog()

        # 1. create (no rollout waits)
        plat = KubernetesPlatform(
            settings=settings, catalog=catalog, values_overlay=OVERLAY, wait=False
        )
        objects = [0]

        def create(spec: TenantSpec) -> None:
            plat.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
            change = plat.deploy(
                spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter
            )
            objects[0] += int(change.details["applied"]) + 2  # + namespace and Secret

        c0, t0 = cpu(), time.monotonic()
        run_pool(args.workers, create, specs)
        dt = time.monotonic() - t0
        figures["create_s"] = round(dt, 1)
        figures["create_objects"] = objects[0]
        figures["create_objects_per_s"] = round(objects[0] / dt, 1)
        figures["create_cpu_ms_per_tenant"] = round((cpu() - c0) / n * 1000, 1)
        figures["create_requests"] = dict(plat.kube().requests)
        print(json.dumps(figures), flush=True)

        # 2. kubectl apply --server-side of the same manifests, other namespaces
        kdir = base / "kubectl"
        kdir.mkdir()
        count = 0
        kspecs = specs[: args.kubectl_tenants]
        for spec in kspecs:
            rendered = plat.desired(
                spec, version="0.28.4", secret_data=plat.secret_data(spec, SECRETS), suspended=False
            )
            ns = f"kb-{spec.slug}"
            docs: list[dict[str, Any]] = [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            ]
            for obj in rendered.objects:
                obj = json.loads(json.dumps(obj))
                obj["metadata"]["namespace"] = ns
                docs.append(obj)
            count += len(docs)
            (kdir / f"{spec.slug}.yaml").write_text(yaml.safe_dump_all(docs))
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        # Namespaces first (kubectl applies files in name order, not namespaces first).
        ns_file = kdir / "00-namespaces.yaml"
        ns_file.write_text(
            yaml.safe_dump_all(
                [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"kb-{s.slug}"}}
                    for s in kspecs
                ]
            )
        )
        subprocess.run(
            [args.kubectl, "apply", "--server-side", "-f", str(ns_file)],
            env=env,
            check=True,
            capture_output=True,
        )
        ns_file.unlink()
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                args.kubectl,
                "apply",
                "--server-side",
                "--field-manager",
                "kubectl-bench",
                "-f",
                str(kdir),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        dt = time.monotonic() - t0
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
        figures["kubectl_s"] = round(dt, 1)
        figures["kubectl_objects"] = count
        figures["kubectl_objects_per_s"] = round(count / dt, 1)
        figures["kubectl_rc"] = proc.returncode
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                args.kubectl,
                "apply",
                "--server-side",
                "--field-manager",
                "kubectl-bench",
                "-f",
                str(kdir),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        figures["kubectl_noop_s"] = round(time.monotonic() - t0, 1)
        print(json.dumps(figures), flush=True)

        # 3. rollouts (cluster time)
        waiter = KubernetesPlatform(
            settings=settings,
            catalog=catalog,
            values_overlay=OVERLAY,
            poll_interval=1.0,
            rollout_timeout=1800,
        )
        t0 = time.monotonic()
        run_pool(
            args.workers,
            lambda s: waiter.deploy(
                spec=s, version="0.28.4", secrets=SECRETS, reporter=null_reporter
            ),
            specs,
        )
        figures["rollout_wait_s"] = round(time.monotonic() - t0, 1)
        waiter.close()
        plat.close()

        # 4. no-op reconcile with a fresh platform
        fresh = KubernetesPlatform(settings=settings, catalog=catalog, values_overlay=OVERLAY)

        def reconcile(spec: TenantSpec) -> None:
            fresh.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
            fresh.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter)

        c0, t0 = cpu(), time.monotonic()
        run_pool(args.workers, reconcile, specs)
        dt = time.monotonic() - t0
        k = fresh.kube()
        figures["noop_s"] = round(dt, 2)
        figures["noop_writes"] = k.writes
        figures["noop_requests"] = dict(k.requests)
        figures["noop_cpu_ms_per_tenant"] = round((cpu() - c0) / n * 1000, 1)
        fresh.close()
        print(json.dumps(figures, indent=2), flush=True)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        cluster.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
