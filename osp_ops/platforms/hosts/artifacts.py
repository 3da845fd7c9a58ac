"""What a playbook run leaves on disk, without the secrets it was given.

The secrets reach Ansible in ``env/extravars`` (mode 0600, read with ``-e @file``):
``write_private`` writes it, ``scrub`` deletes it after the run and masks every secret
value (``secret_values``: the values, their JSON-escaped forms, a PEM key's lines) in the
kept artifacts; ``mask`` and ``scrubbed_tail`` do the same for texts osp-ops records.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def secret_values(secret: Mapping[str, Any]) -> list[str]:
    """Every string to mask of ``secret`` (nested), the longest first."""
    values: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, str) and len(v) >= 6:
            values.append(v)
            values.append(json.dumps(v)[1:-1])
            if "-----BEGIN" in v:  # a PEM key: its base64 lines, whatever the quoting
                values.extend(line for line in v.splitlines() if len(line) >= 32)

    walk(secret)
    return sorted(set(values), key=len, reverse=True)


def mask(text: str, hidden: Sequence[str]) -> str:
    """``text`` with every ``hidden`` value replaced by ``***``."""
    for value in hidden:
        text = text.replace(value, "***")
    return text


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (0600 from its creation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def scrub(run_dir: Path, hidden: Sequence[str]) -> None:
    """Delete the secrets file; mask secret values in every other kept file."""
    shutil.rmtree(run_dir / "env", ignore_errors=True)
    # The runner records the whole process environment next to the command: drop it.
    for command in run_dir.glob("artifacts/*/command"):
        try:
            data = json.loads(command.read_text("utf-8"))
            data.pop("env", None)
            command.write_text(json.dumps(data))
        except (OSError, ValueError):
            command.unlink(missing_ok=True)
    encoded = [v.encode() for v in hidden]
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        masked = data
        for value in encoded:
            masked = masked.replace(value, b"***")
        if masked != data:
            path.write_bytes(masked)


def scrubbed_tail(path: Path, hidden: Sequence[str], lines: int = 15) -> str:
    """The last ``lines`` of a run's output, secrets masked."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return "no output"
    return mask("\n".join(text.strip().splitlines()[-lines:]), hidden) or "no output"
