"""Hundreds of injected corruptions, each detected by verify and refused by restore."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from osp_ops.backups import (
    CommandSource,
    DirectorySource,
    LocalStore,
    list_backups,
    manifest_key,
    restore_backup,
    run_backup,
    verify_backup,
)
from osp_ops.backups.manifest import backup_prefix, manifest_bytes, seal
from osp_ops.domain.errors import BackupError
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys

pytestmark = pytest.mark.integration

KINDS = (
    "flip", "truncate", "append", "missing", "manifest-flip", "manifest-edit",
    "manifest-resealed", "stale-manifest", "swapped-object", "extra-object",
)  # fmt: skip
ROUNDS = 240


def _backup(store: LocalStore, keys: Keys, files: Path, seed: int) -> str:
    # A text "dump" (about 600 KB): verify never runs pg_restore, any bytes will do.
    src = CommandSource(
        ["sh", "-c", f"seq {seed} 100000 | sed 's/$/ réunion du conseil ∑/'"], kind="pg_dump-plain"
    )
    manifest = run_backup(
        source=src, files=DirectorySource(files), store=store, tenant="nanterre",
        spec_yaml=SPEC_YAML, recipients=keys.recipients, app_version="0.28.4",
        row_counts={"decidim_users": seed}, mac_key=manifest_key(keys.tenant_secret),
    )  # fmt: skip
    return manifest.backup_id


def _corrupt(kind: str, root: Path, prefix: str, other: str, rng: random.Random, mac: bytes) -> str:
    d = root / prefix
    objects = sorted(p.name for p in d.iterdir() if p.name != "manifest.json")
    name = rng.choice(objects)
    path = d / name
    data = path.read_bytes()
    if kind == "flip":
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1 :])
    elif kind == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "append":
        path.write_bytes(data + rng.randbytes(rng.randint(1, 100)))
    elif kind == "missing":
        path.unlink()
    elif kind == "manifest-flip":
        name = "manifest.json"
        m = (d / name).read_bytes()
        i = rng.randrange(len(m))
        # XOR 1 never turns one JSON whitespace byte into another.
        (d / name).write_bytes(m[:i] + bytes([m[i] ^ 1]) + m[i + 1 :])
    elif kind in ("manifest-edit", "manifest-resealed"):
        name = "manifest.json"
        doc = json.loads((d / name).read_bytes())
        body = doc["body"]
        field = rng.choice(["row_counts", "size", "sha256", "app_version", "plain_sha256"])
        if field == "row_counts":
            body["row_counts"]["decidim_users"] += rng.randint(1, 9)
        elif field == "app_version":
            body["app_version"] = "0.27.0"
        else:
            obj = rng.choice(body["objects"])
            obj[field] = obj[field] + 1 if field == "size" else "0" * 64
        if kind == "manifest-resealed":  # checksum recomputed, without the tenant key
            (d / name).write_bytes(manifest_bytes(seal(parse_manifest_body(body))))
        else:
            (d / name).write_text(json.dumps(doc))
    elif kind == "stale-manifest":
        name = "manifest.json"
        shutil.copy(root / other / name, d / name)
    elif kind == "swapped-object":
        name = rng.choice(["db.dump.zst.age", "files.tar.zst.age"])  # spec.yaml is identical
        shutil.copy(root / other / name, d / name)
    elif kind == "extra-object":
        name = "notes.txt"
        (d / name).write_text("added later")
    return name


def parse_manifest_body(body: dict[str, object]):  # type: ignore[no-untyped-def]
    from osp_ops.backups.manifest import ManifestBody

    return ManifestBody.model_validate(body)


def test_every_corruption_is_detected_and_refused(tmp_path: Path, keys: Keys, files_dir: Path):
    pristine = tmp_path / "pristine"
    store = LocalStore(pristine)
    victim = _backup(store, keys, files_dir, 1)
    other = _backup(store, keys, files_dir, 2)
    mac = manifest_key(keys.tenant_secret)
    pv, po = backup_prefix("nanterre", victim), backup_prefix("nanterre", other)
    assert verify_backup(store, "nanterre", victim, [keys.tenant_secret], mac_key=mac).ok
    assert _ok_without_mac(store, victim)

    rng = random.Random(20261128)
    seen: Counter[str] = Counter()
    for n in range(ROUNDS):
        kind = KINDS[n % len(KINDS)]
        work = tmp_path / f"r{n}"
        shutil.copytree(pristine, work)
        target = LocalStore(work)
        touched = _corrupt(kind, work, pv, po, rng, mac)
        ident = keys.tenant_secret if n % 2 else keys.recovery_secret
        report = verify_backup(target, "nanterre", victim, [ident], mac_key=mac)
        assert not report.ok, f"round {n}: {kind} of {touched} not detected"
        # Without identities or MAC key, only stored bytes and the checksum are checked;
        # a resealed manifest with an edited row count is the one thing that can pass then.
        out = work / "restore-out"
        with pytest.raises(BackupError):
            restore_backup(
                store=target, tenant="nanterre", backup_id=victim, identities=[ident],
                target_dir=out, mac_key=mac,
            )  # fmt: skip
        assert not out.exists()
        states = {i.backup_id: i.state for i in list_backups(target, "nanterre", mac_key=mac)}
        assert states[other] == "complete"
        seen[kind] += 1
        shutil.rmtree(work)
    assert sum(seen.values()) >= 200 and set(seen) == set(KINDS)


def _ok_without_mac(store: LocalStore, backup_id: str) -> bool:
    return verify_backup(store, "nanterre", backup_id).ok
