"""Running the osp-ops CLI from core tests: a sandbox per tenant world, real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    """How a CLI run ended."""

    rc: int
    stdout: str
    stderr: str
    pid: int


class Zygote:
    """Client of tests/core/zygote.py: forks the real CLI with its imports done."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        self._lock = threading.Lock()

    def _send(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def _recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the CLI zygote died")
        data: dict[str, Any] = json.loads(line)
        return data

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, out: Path, err: Path) -> int:
        """Fork the CLI; its pid (reap it with ``reap``)."""
        with self._lock:
            self._send({"argv": argv, "env": env, "cwd": str(cwd), "out": str(out),
                        "err": str(err), "wait": False})  # fmt: skip
            return int(self._recv()["pid"])

    def reap(self, pid: int) -> int:
        """Wait for a started child; its exit code (-signal if killed)."""
        with self._lock:
            self._send({"reap": pid})
            return int(self._recv()["rc"])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()


@dataclass
class Sandbox:
    """One world: a working directory with tenants/, a data dir and a fake platform journal."""

    root: Path
    state_url: str | None = None
    zygote: Zygote | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    _runs: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def journal(self) -> Path:
        return self.root / "fake.json"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
        env |= {
            "OSP_OPS_DATA_DIR": str(self.data_dir),
            "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(self.journal),
            "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
            "OSP_OPS_ACTOR": "tester",
            "OSP_OPS_RETRY_BASE_DELAY": "0",
            "COLUMNS": "200",
        }
        if self.state_url:
            env["OSP_OPS_STATE_URL"] = self.state_url
        return env | self.extra_env | extra

    def _files(self) -> tuple[Path, Path]:
        self._runs += 1
        logs = self.root / "runs"
        logs.mkdir(exist_ok=True)
        return logs / f"{self._runs}.out", logs / f"{self._runs}.err"

    def start(self, *argv: str, **env: str) -> int:
        """Start the CLI through the zygote; its pid."""
        assert self.zygote is not None
        out, err = self._files()
        return self.zygote.start(list(argv), self.env(**env), self.root, out, err)

    def finish(self, pid: int, number: int | None = None) -> Result:
        """Wait for a started run and read its output."""
        assert self.zygote is not None
        rc = self.zygote.reap(pid)
        return self._result(rc, pid, number)

    def _result(self, rc: int, pid: int, number: int | None) -> Result:
        logs = self.root / "runs"
        outs = sorted(logs.glob("*.out"), key=lambda p: int(p.stem))
        out = outs[-1] if number is None else logs / f"{number}.out"
        return Result(rc, out.read_text(), out.with_suffix(".err").read_text(), pid)

    def run(self, *argv: str, **env: str) -> Result:
        """Run the CLI to its end (forked from the zygote when there is one)."""
        if self.zygote is None:
            return self.run_process(*argv, **env)
        number = self._runs + 1
        pid = self.start(*argv, **env)
        return self.finish(pid, number)

    def run_process(self, *argv: str, **env: str) -> Result:
        """Run the CLI as its own fresh process: ``python -m osp_ops.cli``."""
        proc = subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *argv],
            env=self.env(**env), cwd=self.root, capture_output=True, text=True, check=False,
            timeout=120,
        )  # fmt: skip
        return Result(proc.returncode, proc.stdout, proc.stderr, 0)

    def copy_to(self, root: Path) -> Sandbox:
        """A copy of this world (files only; a PostgreSQL state DB is not copied)."""
        assert self.state_url is None, "copy only SQLite worlds"
        shutil.copytree(self.root, root, ignore=shutil.ignore_patterns("runs"))
        return Sandbox(root, None, self.zygote, dict(self.extra_env))

    def world(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.journal.read_text())
        return data
