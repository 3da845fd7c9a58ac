"""Benchmark the backup pipeline against plain pg_dump pipelines, interleaved in one run.

    python bench/backup.py --size-mb 100            # local store in a temp dir
    python bench/backup.py --size-mb 100 --minio    # a throwaway MinIO from testbin
    OSP_OPS_BACKUP_URL=s3://b/p OSP_OPS_S3_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=... \\
        python bench/backup.py                      # an S3 you point it at

Starts a throwaway PostgreSQL 15 (or uses ``--dsn``), fills it with a Decidim-like
database of multilingual JSON text (``tests/backups/sampledata.py``; default 400 MB),
then, ``--rounds`` times in rotating order, times:

- ``pg_dump -Fp | zstd -3``            (plain SQL, zstd CLI, to /dev/null)
- ``pg_dump -Fc -Z0 | zstd -3``       (custom format, uncompressed, zstd CLI)
- ``pg_dump -Fc``                      (custom format, default gzip level, to /dev/null)
- osp-ops: ``pg_dump -Fc -Z0`` -> zstd -> age -> store (run_backup, database only)
- restore: osp-ops ``restore_backup`` vs ``zstd -dc dump.zst | pg_restore``

Peak RSS is the sum over each method's process tree, sampled from /proc every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BYTES_PER_PROPOSAL = 6800


def _tree_rss_kib(root: int) -> int:
    """Sum of VmRSS over ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_tree(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run a process tree; return (seconds, peak RSS in KiB summed over the tree, stdout).

    RSS is sampled from /proc every 50 ms (the kernel's ru_maxrss would count the
    forking Python parent's pages, and only the largest single process).
    """
    import threading

    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, _tree_rss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed with {proc.returncode}")
    return time.monotonic() - t0, peak, out


def child_backup(args: argparse.Namespace) -> None:
    """In a child process: one run_backup (database only) or one restore_backup."""
    from osp_ops.backups import open_store, pg_dump_source, restore_backup, run_backup
    from osp_ops.settings import Settings

    store = open_store(args.store_url, Settings(s3_endpoint_url=args.endpoint or None))
    if args.child == "backup":
        m = run_backup(
            source=pg_dump_source(args.dsn, bin_dir=Path(args.pg_bin)), files=None,
            store=store, tenant="bench", spec_yaml="slug: bench\n",
            recipients=[args.public], app_version="bench", row_counts={},
        )  # fmt: skip
        db = m.body.object("database")
        assert db is not None
        print(json.dumps({"id": m.backup_id, "stored": db.size, "plain": db.plain_size}))
    else:
        restore_backup(
            store=store, tenant="bench", backup_id=args.backup_id, identities=[args.secret],
            target_dsn=args.dsn, bin_dir=Path(args.pg_bin), verify_first=False,
        )  # fmt: skip
        print("{}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=400, help="database size to build (MB)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dsn", help="use this database instead of building one")
    p.add_argument("--minio", action="store_true", help="start a MinIO from testbin")
    p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--child", choices=["backup", "restore"], help=argparse.SUPPRESS)
    for hidden in ("store-url", "endpoint", "public", "secret", "backup-id"):
        p.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child_backup(args)
        return

    from osp_ops.backups import libpq_env, new_identity
    from tests.backups import sampledata
    from tests.fixtures.postgres import PostgresServer

    work = Path(tempfile.mkdtemp(prefix="osp-bench-"))
    work.chmod(0o755)
    services: list[object] = []
    try:
        if args.dsn:
            dsn = args.dsn
            pg = None
        else:
            pg = PostgresServer(work / "pg")
            pg.start()
            services.append(pg)
            dsn = pg.create_database("bench")
            n = max(100, args.size_mb * 1_000_000 // BYTES_PER_PROPOSAL)
            t0 = time.monotonic()
            sampledata.populate(dsn, proposals=n)
            print(f"built {n} proposals in {time.monotonic() - t0:.0f}s")
        import psycopg

        with psycopg.connect(dsn) as conn:
            db_size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
        print(f"database size: {db_size / 1e6:.0f} MB")

        endpoint = os.environ.get("OSP_OPS_S3_ENDPOINT_URL", "")
        store_url = os.environ.get("OSP_OPS_BACKUP_URL", "")
        env = {**os.environ}
        if args.minio:
            from tests.fixtures.minio import MinioServer

            minio = MinioServer(work / "minio")
            minio.start()
            services.append(minio)
            env.update(minio.env)
            endpoint, store_url = minio.endpoint_url, f"s3://{minio.bucket}/bench"
        if not store_url.startswith("s3://"):
            store_url = f"file://{work / 'store'}"
        where = "S3 " + (endpoint or "(AWS)") if store_url.startswith("s3://") else "local store"
        print(f"osp-ops pipeline target: {where}")

        secret, public = new_identity()
        pg_env = {**env, **libpq_env(dsn)}
        pgb = args.pg_bin
        zdump = work / "dump.zst"
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"{pgb}/pg_dump -Fc -Z0 | zstd -3 -q > {zdump}"],
            env=pg_env, check=True,
        )  # fmt: skip
        py = [sys.executable, __file__, "--pg-bin", pgb, "--store-url", store_url,
              "--endpoint", endpoint]  # fmt: skip
        methods = {
            "pg_dump -Fp | zstd -3": ["bash", "-o", "pipefail", "-c",
                                      f"{pgb}/pg_dump -Fp | zstd -3 -q | wc -c"],
            "pg_dump -Fc -Z0 | zstd -3": ["bash", "-o", "pipefail", "-c",
                                          f"{pgb}/pg_dump -Fc -Z0 | zstd -3 -q | wc -c"],
            "pg_dump -Fc (gzip 6)": ["bash", "-o", "pipefail", "-c", f"{pgb}/pg_dump -Fc | wc -c"],
            "osp-ops pg_dump|zstd|age|store": [*py, "--child", "backup", "--dsn", dsn,
                                               "--public", public],
        }  # fmt: skip
        results: dict[str, list[tuple[float, int, int]]] = {}
        last_id = ""
        restores: dict[str, list[tuple[float, int]]] = {}
        names = list(methods)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                secs, rss, out = run_tree(methods[name], env=pg_env)
                if name.startswith("osp-ops"):
                    info = json.loads(out)
                    last_id, size = info["id"], info["stored"]
                else:
                    size = int(out.strip())
                results.setdefault(name, []).append((secs, rss, size))
            # Restores, alternating order, each into a fresh database.
            order = ["zstd -dc | pg_restore", "osp-ops restore_backup"]
            for name in order if r % 2 == 0 else order[::-1]:
                assert pg is not None or args.dsn
                target = pg.create_database() if pg else dsn + f"_r{secrets.token_hex(3)}"
                tenv = {**env, **libpq_env(target)}
                if name.startswith("zstd"):
                    argv = [
                        "bash",
                        "-o",
                        "pipefail",
                        "-c",
                        f'zstd -dc {zdump} | {pgb}/pg_restore --no-owner -d "$PGDATABASE"',
                    ]
                else:
                    argv = [
                        *py,
                        "--child",
                        "restore",
                        "--dsn",
                        target,
                        "--secret",
                        secret,
                        "--backup-id",
                        last_id,
                    ]
                secs, rss, _ = run_tree(argv, env=tenv)  # fmt: skip
                restores.setdefault(name, []).append((secs, rss))

        print(
            f"\n{'method':34} {'best s':>7} {'MB/s':>6} {'stored MB':>9} {'ratio':>6} {'peak RSS MB':>11}"
        )
        for name, runs in results.items():
            best = min(s for s, _, _ in runs)
            rss = max(m for _, m, _ in runs) / 1024
            size = runs[-1][2]
            print(f"{name:34} {best:7.2f} {db_size / 1e6 / best:6.1f} {size / 1e6:9.1f}"
                  f" {db_size / size:6.2f} {rss:11.0f}")  # fmt: skip
        for name, rruns in restores.items():
            best = min(s for s, _ in rruns)
            rss = max(m for _, m in rruns) / 1024
            print(f"{'restore: ' + name:34} {best:7.2f} {db_size / 1e6 / best:6.1f}"
                  f" {'':>9} {'':>6} {rss:11.0f}")  # fmt: skip
        print("\nratio = database size / stored bytes; MB/s = database MB per second; "
              "best of the rounds; RSS = peak sum over the process tree")  # fmt: skip
    finally:
        for svc in reversed(services):
            svc.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
