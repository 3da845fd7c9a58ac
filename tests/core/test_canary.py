"""A planted canary secret never leaks: not in logs, operation records, the audit log,
error messages, nor on the command line of any process osp-ops runs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from osp_ops.store.db import Database
from osp_ops.store.secrets import MasterKey, SecretStore
from tests.core.cli import Sandbox, Zygote

pytestmark = pytest.mark.integration

CANARY = "canary-7Hq2-Zx9w-Lp4v-secret"


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            out |= {kid, *_children(kid)}
    return out


def _dump(db: Database) -> str:
    """Every row of every table that holds text (secrets' ciphertext aside)."""
    parts = []
    with db.engine.connect() as conn:
        for table in ("tenants", "operations", "steps", "operation_log", "audit_log", "leases"):
            parts += [repr(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def test_canary_never_leaks(tmp_path: Path, zygote: Zygote) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    db = Database(f"sqlite:///{box.data_dir / 'state.db'}")
    SecretStore(db, MasterKey(box.data_dir / "master.key")).put(
        "nanterre", "admin_password", CANARY
    )

    # Run a create with every log line on, and watch the command lines of it and its children.
    argv = [sys.executable, "-m", "osp_ops.cli", "-v", "tenant", "create", "nanterre",
            "--app", "openslides", "-v"]  # fmt: skip
    env = box.env(OSP_OPS_FAKE_PLATFORM_DELAY="1.5")
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    cmdlines: list[str] = []
    while proc.poll() is None:
        for pid in {proc.pid, *_children(proc.pid)}:
            with contextlib.suppress(OSError):
                cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert cmdlines and all(CANARY not in c for c in cmdlines)
    assert "fake deploy" in stdout  # -v showed the platform's events
    assert CANARY not in stdout + stderr

    # The step that used the secret really had it (the planted value was kept, not replaced).
    assert (
        SecretStore(db, MasterKey(box.data_dir / "master.key")).get("nanterre", "admin_password")
        == CANARY
    )

    # Reading commands: operations, events, audit, secrets list, config.
    for cmd in (("op", "list", "--json"), ("audit", "list", "--json"), ("audit", "verify"),
                ("secrets", "list", "nanterre"), ("config", "show", "--json"),
                ("tenant", "show", "nanterre", "--json"), ("tenant", "list", "--json")):  # fmt: skip
        r = box.run("-v", *cmd)
        assert r.rc == 0, (cmd, r.stderr)
        assert CANARY not in r.stdout + r.stderr, cmd
    op_id = box.run("op", "list", "--json").stdout.split('"id": "')[1].split('"')[0]
    shown = box.run("-v", "op", "show", op_id, "--json")
    assert shown.rc == 0 and "generate-secrets" in shown.stdout
    assert CANARY not in shown.stdout + shown.stderr

    # Credentials print it on purpose; the audit entry of that read must not hold it.
    creds = box.run("tenant", "credentials", "nanterre")
    assert CANARY in creds.stdout
    dump = _dump(db)
    assert "credentials.read" in dump and "generate-secrets" in dump
    assert CANARY not in dump
    db.dispose()


def test_state_db_password_is_not_in_error_messages(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, state_url=f"postgresql://ops:{CANARY}@127.0.0.1:1/ops")
    r = box.run_process("-v", "tenant", "list")
    assert r.rc != 0
    assert "Error:" in r.stderr
    assert CANARY not in r.stdout + r.stderr
