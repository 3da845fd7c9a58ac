"""Benchmark `osp-ops backup run` / `backup restore` against plain pg_dump pipelines.

    python bench/backup.py --size-mb 400 --minio    # throwaway PostgreSQL 15 + MinIO
    python bench/backup.py --size-mb 400            # local store (file://) in the work dir
    python bench/backup.py --size-mb 2000 --minio --work /var/tmp/osp-bench   # keep the
        # database (and MinIO) between runs: a second run skips the build

Starts a throwaway PostgreSQL 15 (or uses the server of ``--dsn``, a superuser DSN) and
fills the database ``osp_bench`` of a Kubernetes-style tenant ``bench`` with a
Decidim-like database of multilingual JSON text (``tests/backups/sampledata.py``).
The app platform is the journal fake (``OSP_OPS_FAKE_PLATFORM_JOURNAL``): the real CLI
runs, only deploys are fake. Then, ``--rounds`` times in rotating order, it times:

- ``pg_dump -Fp | zstd -3 > /dev/null``     (the issue's raw pipeline, plain SQL)
- ``pg_dump -Fc -Z0 | zstd -3 > /dev/null`` (the same, in the custom format osp-ops dumps)
- ``pg_dump -Fc > /dev/null``               (custom format, default gzip level 6)
- ``pg_dump -Fc -Z0 > /dev/null``           (no compression: the ceiling of any pipeline)
- ``osp-ops backup run bench``              (the CLI in a subprocess: cleanup, dump and
  upload to the store, verify by re-reading; the dump-and-upload step is also reported
  alone, from the operation's recorded step durations)

and restores, alternating:

- ``zstd -dc dump.zst | pg_restore`` into a new database
- ``osp-ops backup restore bench`` (verify, restore into a new database, switch; the
  restore-to-new-database step alone is also reported). The retired database is dropped
  (``--confirm-drop``) after each round, outside the timing.

Each round runs every method once. Ratios are paired within each round (osp-ops and a
baseline of the same round), then reported as the median and range of the rounds; the
table gives each method's median and range. osp-ops finds pg_dump on PATH, which gets
``--pg-bin`` first, so both sides run the same pg_dump (not Debian's /usr/bin wrapper).

Peak RSS: the sum of VmRSS over each method's process tree (pg_dump, zstd, python,
psql...; not the PostgreSQL server, not MinIO), sampled from /proc every 50 ms, and
VmHWM of the osp-ops Python process alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BYTES_PER_PROPOSAL = 6800
SLUG = "bench"


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc/<pid>/task/<tid>/children (cheap)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            with contextlib.suppress(OSError):
                todo.extend(
                    int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                )
    return out


def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Run:
    """One timed run: wall seconds, peak tree RSS and root VmHWM (KiB), stdout."""

    seconds: float
    tree_kib: int
    root_hwm_kib: int
    out: str
    extra: dict[str, float] = field(default_factory=dict)


def run_tree(argv: list[str], env: dict[str, str]) -> Run:
    """Run a command; sample the RSS of its process tree every 50 ms."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    peak = hwm = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, hwm
        while not done.wait(0.05):
            peak = max(peak, sum(_status_kib(p, "VmRSS") for p in _tree(proc.pid)))
            hwm = max(hwm, _status_kib(proc.pid, "VmHWM"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.monotonic() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} failed with {proc.returncode}:\n{out[-2000:]}")
    return Run(seconds, peak, hwm, out)


def sh(cmd: str) -> list[str]:
    """A bash pipeline that fails when any of its commands fails."""
    return ["bash", "-o", "pipefail", "-c", cmd]


def _state(work: Path) -> dict[str, Any]:
    path = work / "bench-state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(work: Path, state: dict[str, Any]) -> None:
    (work / "bench-state.json").write_text(json.dumps(state))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=400, help="database size to build (MB)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dsn", help="superuser DSN of an existing server (instead of a throwaway)")
    p.add_argument("--minio", action="store_true", help="start a MinIO from testbin")
    p.add_argument("--work", type=Path, help="work directory kept between runs (default: temp)")
    p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--skip", default="", help="comma-separated method names to leave out")
    args = p.parse_args()

    import psycopg
    import yaml

    from osp_ops.backups import libpq_env, new_identity
    from osp_ops.domain.names import db_name_for
    from osp_ops.platforms.data import with_database
    from osp_ops.platforms.pgtenant import TenantDatabases
    from tests.backups import sampledata
    from tests.fixtures.postgres import PostgresServer

    work = args.work or Path(tempfile.mkdtemp(prefix="osp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    state = _state(work)
    services: list[Any] = []
    try:
        if args.dsn:
            admin_dsn = args.dsn
        else:
            pg = PostgresServer(work / "pg")
            if "pg" in state:
                pg.password, pg.port = state["pg"]["password"], state["pg"]["port"]
            pg.start()
            services.append(pg)
            state["pg"] = {"password": pg.password, "port": pg.port}
            _save_state(work, state)
            admin_dsn = pg.dsn
        dbname = db_name_for(SLUG)
        dsn = with_database(admin_dsn, dbname)

        env = {**os.environ}
        endpoint, store_url = env.get("OSP_OPS_S3_ENDPOINT_URL", ""), ""
        if args.minio:
            from tests.fixtures.minio import MinioServer

            minio = MinioServer(work / "minio")
            if "minio" in state:
                minio.secret_key, minio.port = state["minio"]["secret"], state["minio"]["port"]
            minio.start()
            services.append(minio)
            state["minio"] = {"secret": minio.secret_key, "port": minio.port}
            _save_state(work, state)
            env.update(minio.env)
            endpoint, store_url = minio.endpoint_url, f"s3://{minio.bucket}/bench"
        elif env.get("OSP_OPS_BACKUP_URL", "").startswith("s3://"):
            store_url = env["OSP_OPS_BACKUP_URL"]
        else:
            store_url = f"file://{work / 'store'}"
        where = f"S3 {endpoint or '(AWS)'}" if store_url.startswith("s3://") else "local store"
        print(f"osp-ops target: {where} ({store_url})")

        # The osp-ops side: settings through the environment, the tenant created once.
        if "recovery" not in state:
            state["recovery"] = new_identity()[1]
            _save_state(work, state)
        env.update(
            {
                "OSP_OPS_DATA_DIR": str(work / "osp" / "data"),
                "OSP_OPS_TENANTS_DIR": str(work / "osp" / "tenants"),
                "OSP_OPS_PLATFORM_DB_ADMIN_DSN": admin_dsn,
                "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(work / "osp" / "platform.json"),
                "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
                "OSP_OPS_BACKUP_URL": store_url,
                "OSP_OPS_RECOVERY_PUBLIC_KEY": state["recovery"],
                "OSP_OPS_RETRY_BASE_DELAY": "0",
                "COLUMNS": "200",
            }
        )
        if endpoint:
            env["OSP_OPS_S3_ENDPOINT_URL"] = endpoint
        # osp-ops runs pg_dump, pg_restore and psql from PATH; /usr/bin/pg_dump is Debian's
        # wrapper script (perl, picks a version). Both sides run the binaries of --pg-bin.
        env["PATH"] = f"{args.pg_bin}{os.pathsep}{env.get('PATH', os.defpath)}"
        for tool in ("pg_dump", "pg_restore"):
            found = shutil.which(tool, path=env["PATH"])
            if found is None or Path(found).resolve() != (Path(args.pg_bin) / tool).resolve():
                raise SystemExit(f"{tool} of osp-ops would be {found}, not {args.pg_bin}/{tool}")
        print(f"pg_dump for the baselines and osp-ops: {args.pg_bin}/pg_dump")
        cli = [sys.executable, "-m", "osp_ops.cli"]
        tenants = work / "osp" / "tenants"
        if not (tenants / f"{SLUG}.yaml").exists():
            tenants.mkdir(parents=True, exist_ok=True)
            spec = {
                "slug": SLUG, "name": "Bench", "app": {"name": "decidim", "version": "0.27.7"},
                "hosts": {"primary": "bench.example.org"},
                "admin": {"name": "Admin", "email": "admin@bench.example.org"},
                "platform": {"kind": "kubernetes"},
            }  # fmt: skip
            (tenants / f"{SLUG}.yaml").write_text(yaml.safe_dump(spec))
            subprocess.run([*cli, "tenant", "create", SLUG], env=env, check=True)

        # The data: built once per size (kept with --work).
        want = max(100, args.size_mb * 1_000_000 // BYTES_PER_PROPOSAL)
        if state.get("proposals") != want:
            dbs = TenantDatabases(admin_dsn)
            try:
                with psycopg.connect(admin_dsn, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'.encode())
                dbs.ensure(SLUG, "bench-" + os.urandom(6).hex())
            finally:
                dbs.close()
            t0 = time.monotonic()
            sampledata.populate(dsn, proposals=want)
            print(f"built {want} proposals in {time.monotonic() - t0:.0f} s")
            state["proposals"] = want
            _save_state(work, state)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            assert row is not None
            db_size = int(row[0])
        print(f"database size: {db_size / 1e6:.0f} MB")

        pg_env = {**env, **libpq_env(dsn)}
        pgb = args.pg_bin
        zdump = work / "dump.zst"
        subprocess.run(sh(f"{pgb}/pg_dump -Fc -Z0 | zstd -3 -q > {zdump}"), env=pg_env, check=True)
        dump_size = int(subprocess.run(
            sh(f"{pgb}/pg_dump -Fc -Z0 | wc -c"), env=pg_env, check=True,
            capture_output=True, text=True,
        ).stdout)  # fmt: skip
        print(f"pg_dump -Fc -Z0 size: {dump_size / 1e6:.0f} MB; load: {_load()}")

        methods = {
            "pg_dump -Fp | zstd -3": sh(f"{pgb}/pg_dump -Fp | zstd -3 -q | wc -c"),
            "pg_dump -Fc -Z0 | zstd -3": sh(f"{pgb}/pg_dump -Fc -Z0 | zstd -3 -q | wc -c"),
            "pg_dump -Fc (gzip 6)": sh(f"{pgb}/pg_dump -Fc | wc -c"),
            "pg_dump -Fc -Z0 alone": sh(f"{pgb}/pg_dump -Fc -Z0 | wc -c"),
            "osp-ops backup run": [*cli, "backup", "run", SLUG],
        }
        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        methods = {k: v for k, v in methods.items() if k not in skip}
        restores = {
            "zstd -dc | pg_restore": "raw",
            "osp-ops backup restore": "osp",
        }
        results: dict[str, list[Run]] = {}
        names = list(methods)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                run = run_tree(methods[name], pg_env if "pg_dump" in name else env)
                if name.startswith("osp-ops"):
                    step = _last_op_steps(cli, env, "backup")
                    run.extra["step"] = step["dump-and-upload"]
                    run.extra["verify"] = step["verify-new-backup"]
                    run.extra["stored"] = _latest_size(cli, env)
                else:
                    run.extra["stored"] = int(run.out.strip())
                results.setdefault(name, []).append(run)
                print(f"  round {r + 1}: {name}: {run.seconds:.2f} s  (load {_load()})")
            order = list(restores) if r % 2 == 0 else list(restores)[::-1]
            for name in order:
                if name in skip:
                    continue
                if restores[name] == "raw":
                    target = f"bench_raw_{r}"
                    with psycopg.connect(admin_dsn, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{target}"'.encode())
                        conn.execute(f'CREATE DATABASE "{target}"'.encode())
                    tenv = {**env, **libpq_env(with_database(admin_dsn, target))}
                    run = run_tree(
                        sh(f'zstd -dc {zdump} | {pgb}/pg_restore --no-owner --no-privileges'
                           f' --exit-on-error -d "$PGDATABASE"'), tenv,
                    )  # fmt: skip
                    with psycopg.connect(admin_dsn, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE "{target}"'.encode())
                else:
                    run = run_tree([*cli, "backup", "restore", SLUG, "--yes"], env)
                    step = _last_op_steps(cli, env, "restore")
                    run.extra["step"] = step["restore-to-new-database"]
                    run.extra["verify"] = step["verify-backup"]
                    subprocess.run([*cli, "backup", "restore", SLUG, "--confirm-drop", "--yes"],
                                   env=env, check=True, capture_output=True)  # fmt: skip
                results.setdefault("restore: " + name, []).append(run)
                print(f"  round {r + 1}: restore {name}: {run.seconds:.2f} s  (load {_load()})")

        base = run_tree([*cli, "op", "list", "--tenant", SLUG], env)
        print(f"\nosp-ops CLI baseline (op list): python HWM {base.root_hwm_kib / 1024:.0f} MiB")
        _report(results, db_size, dump_size)
    finally:
        for svc in reversed(services):
            svc.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _last_op_steps(cli: list[str], env: dict[str, str], kind: str) -> dict[str, float]:
    """Seconds of each step of the tenant's latest operation of ``kind``."""
    out = subprocess.run([*cli, "op", "list", "--tenant", SLUG, "--json"], env=env,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    ops = [o for o in json.loads(out) if o["kind"] == kind]
    last = max(ops, key=lambda o: o["created_at"])
    return {s["name"]: (s["duration_ms"] or 0) / 1000 for s in last["steps"]}


def _latest_size(cli: list[str], env: dict[str, str]) -> int:
    """Stored bytes of the tenant's newest backup (``backup list --json``)."""
    out = subprocess.run([*cli, "backup", "list", SLUG, "--json"], env=env,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return int(json.loads(out)["backups"][-1]["size"])


def _seconds(run: Run, step: bool = False) -> float:
    return run.extra["step"] if step else run.seconds


def _ratios(
    results: dict[str, list[Run]], mine: str, ref: str, *, step: bool = False
) -> list[float]:
    """Speed of ``mine`` over ``ref`` in each round (>1: ``mine`` faster).

    Every method runs once per round, so the i-th runs of two methods are of one round:
    a ratio never pairs figures of different rounds.
    """
    a, b = results.get(mine, []), results.get(ref, [])
    return [rb.seconds / _seconds(ra, step) for ra, rb in zip(a, b, strict=True)]


def _spread(values: list[float], fmt: str = ".2f") -> str:
    """``median (min-max)`` of the rounds."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def _report(results: dict[str, list[Run]], db_size: int, dump_size: int) -> None:
    """Median and range of the rounds per method; ratios paired within each round."""
    mb = db_size / 1e6
    print(f"\ndatabase {mb:.0f} MB, pg_dump -Fc -Z0 stream {dump_size / 1e6:.0f} MB")
    print("seconds: median of the rounds (min-max); MB/s from the median")
    print(
        f"| {'method':36} | {'seconds':19} | MB/s | stored MB | peak RSS tree MB | python HWM MB |"
    )
    print(f"|{'-' * 38}|{'-' * 20}:|-----:|----------:|-----------------:|--------------:|")

    def row(
        label: str, secs: list[float], stored: str = " " * 9, rss: str = "", hwm: str = ""
    ) -> None:
        med = statistics.median(secs)
        print(f"| {label:36} | {_spread(secs):>19} | {mb / med:4.0f} | {stored} | "
              f"{rss:>16} | {hwm:>13} |")  # fmt: skip

    for name, runs in results.items():
        osp = name.startswith(("osp", "restore: osp"))
        stored_b = [r.extra["stored"] for r in runs if "stored" in r.extra]
        row(
            name,
            [r.seconds for r in runs],
            f"{statistics.median(stored_b) / 1e6:9.1f}" if stored_b else " " * 9,
            f"{max(r.tree_kib for r in runs) / 1024:.0f}",
            f"{max(r.root_hwm_kib for r in runs) / 1024:.0f}" if osp else "",
        )
        if "step" in runs[0].extra:
            label = "dump-and-upload" if "run" in name else "restore-to-new-database"
            row("  step " + label, [r.extra["step"] for r in runs])
            row("  step verify", [r.extra["verify"] for r in runs])

    print("\nspeed ratios (>1: the first is faster), each round's own pair; median (min-max):")

    def ratio(label: str, mine: str, ref: str, ref_label: str, step: bool = False) -> None:
        values = _ratios(results, mine, ref, step=step)
        if values:
            print(f"  {label:32} vs {ref_label:28} {_spread(values)}x  ({len(values)} rounds)")

    for step, label in [(False, "backup run (whole CLI)"), (True, "dump-and-upload step")]:
        for ref in (
            "pg_dump -Fp | zstd -3",
            "pg_dump -Fc -Z0 | zstd -3",
            "pg_dump -Fc (gzip 6)",
            "pg_dump -Fc -Z0 alone",
        ):
            ratio(label, "osp-ops backup run", ref, ref, step)
    ratio("(ceiling) pg_dump -Fc -Z0 alone", "pg_dump -Fc -Z0 alone", "pg_dump -Fc (gzip 6)",
          "pg_dump -Fc (gzip 6)")  # fmt: skip
    for step, label in [(False, "backup restore (whole CLI)"), (True, "restore-to-new-database")]:
        ratio(label, "restore: osp-ops backup restore", "restore: zstd -dc | pg_restore",
              "zstd -dc | pg_restore", step)  # fmt: skip


if __name__ == "__main__":
    main()
