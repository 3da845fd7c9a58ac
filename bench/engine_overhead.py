"""The operation engine's own overhead, per step and per operation.

The platform is the in-memory fake (no work at all), so what is timed is the engine:
recording the request, the lease, one state-DB transaction per step start and one per
step end, the cancel check, the audit entries, the release. Side by side, a baseline:
the cost of one raw commit of a small row on the same database (sqlite3 module with
the same WAL/synchronous settings, or psycopg), and the ratio between the two.

    python bench/engine_overhead.py                 # SQLite in a temp dir
    OSP_OPS_BENCH_PG_DSN=postgresql://... python bench/engine_overhead.py   # PostgreSQL too

Target: under 5 ms of engine overhead per step on SQLite.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.runner import run_operation
from osp_ops.engine.steps import KINDS, Kind, StepContext, register
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings

NOOP_STEPS = 20


def _noop(sc: StepContext) -> str:
    return "ok"


def _spec(slug: str) -> TenantSpec:
    return validate_spec(
        {
            "slug": slug,
            "name": slug,
            "app": {"name": "openslides", "version": "3.3"},
            "hosts": {"primary": f"{slug}.bench.example"},
            "admin": {"name": "A", "email": f"a@{slug}.example.org"},
        }
    )


def _context(tmp: Path, state_url: str | None) -> Context:
    settings = Settings(
        data_dir=tmp / "data", tenants_dir=tmp / "tenants", state_url=state_url,
        retry_base_delay=0,
    )  # fmt: skip
    fake = FakePlatform()
    return build_context(settings, actor="bench", platform_factory=lambda _s: fake)


def _timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_engine(ctx: Context, rounds: int) -> dict[str, float]:
    """Milliseconds: a whole create operation, and a no-op step (median of rounds)."""
    if "bench-noop" not in KINDS:
        register(
            Kind("bench-noop", tuple(f"noop@{i}" for i in range(NOOP_STEPS)), None),
            {"noop": _noop},
        )
    counter = iter(range(10**9))

    def create() -> None:
        spec = _spec(f"b{uuid.uuid4().hex[:10]}")
        op, _ = request(ctx, "create", spec)
        run_operation(ctx, op.id)

    spec = _spec("noop")
    op, _ = request(ctx, "create", spec)
    run_operation(ctx, op.id)

    def noop_op(steps: int) -> Callable[[], None]:
        def run() -> None:
            # Distinct params: an identical pending request would be deduplicated.
            names = tuple(f"noop@{i}" for i in range(steps))
            op, _ = request(ctx, "bench-noop", spec, params={"n": next(counter)}, steps=names)
            run_operation(ctx, op.id)

        return run

    create_ms = statistics.median(_timed(create, rounds)) * 1000
    zero = statistics.median(_timed(noop_op(1), rounds)) * 1000
    many = statistics.median(_timed(noop_op(NOOP_STEPS + 1), rounds)) * 1000
    per_step = (many - zero) / NOOP_STEPS
    return {
        "create_op_ms": create_ms,
        "create_steps": len(KINDS["create"].steps),
        "op_fixed_ms": zero - per_step,
        "per_step_ms": per_step,
    }


def sqlite_commit_ms(path: Path, rounds: int) -> float:
    """One small INSERT + COMMIT with the engine's pragmas (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")

    def commit() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES ('x')")
        conn.execute("COMMIT")

    result = statistics.median(_timed(commit, rounds)) * 1000
    conn.close()
    return result


def pg_commit_ms(dsn: str, rounds: int) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (id serial PRIMARY KEY, v text)")

        def commit() -> None:
            with conn.transaction():
                conn.execute("INSERT INTO t (v) VALUES ('x')")

        return statistics.median(_timed(commit, rounds)) * 1000


def _report(name: str, engine: dict[str, float], commit_ms: float) -> None:
    print(f"\n{name}")
    print(f"  {'measure':34} {'ms':>9} {'x raw commit':>13}")
    rows = [
        ("raw commit (baseline)", commit_ms),
        (f"create operation ({engine['create_steps']:.0f} steps, fake)", engine["create_op_ms"]),
        ("operation fixed cost (no steps)", engine["op_fixed_ms"]),
        ("per step (no-op step)", engine["per_step_ms"]),
    ]
    for label, ms in rows:
        print(f"  {label:34} {ms:9.2f} {ms / commit_ms:13.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"engine overhead, median of {args.rounds} rounds, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="osp-ops-bench-") as d:
        tmp = Path(d)
        ctx = _context(tmp, None)
        engine = bench_engine(ctx, args.rounds)
        ctx.db.dispose()
        _report("SQLite (WAL, synchronous=NORMAL)", engine, sqlite_commit_ms(tmp / "raw.db", 200))
        ok = engine["per_step_ms"] < 5.0
        print(f"  target: < 5 ms per step on SQLite: {'met' if ok else 'MISSED'}")
        dsn = os.environ.get("OSP_OPS_BENCH_PG_DSN")
        if dsn:
            ctx = _context(tmp / "pg", dsn)
            engine = bench_engine(ctx, args.rounds)
            ctx.db.dispose()
            _report("PostgreSQL", engine, pg_commit_ms(dsn, 200))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
