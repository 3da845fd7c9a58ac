"""Verification: re-read a backup and prove it restores, without restoring it.

For each backup checked: the manifest parses, its own checksum (and MAC, given the key)
holds and it names this tenant and backup id; then every object listed is read in full:
stored size and SHA-256 must match, and, given an age identity, the object is decrypted
and decompressed end to end (output discarded) and the plain size and SHA-256 must
match too. Objects in the backup's directory that the manifest does not list are
reported as well. The result is ``passed``, ``failed`` (an object does not match) or
``damaged`` (the manifest is missing or unreadable: the backup is kept, see
``backup repair``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from osp_ops.backups.catalog import list_backups, read_manifest
from osp_ops.backups.manifest import MANIFEST, Manifest, ObjectEntry, backup_prefix
from osp_ops.backups.pipeline import decode_object
from osp_ops.backups.streams import HashingReader, IterReader
from osp_ops.domain.errors import BackupError, NotFoundError, OspOpsError
from osp_ops.objects.base import ObjectStore


@dataclass
class VerifyReport:
    """The outcome of verifying one backup."""

    tenant: str
    backup_id: str
    problems: list[str] = field(default_factory=list)
    objects_checked: int = 0
    bytes_read: int = 0
    decoded: bool = False
    seconds: float = 0.0
    manifest: Manifest | None = None
    damaged: bool = False  # the manifest is missing or unreadable

    @property
    def ok(self) -> bool:
        """True when nothing was wrong."""
        return not self.problems

    @property
    def result(self) -> Literal["passed", "failed", "damaged"]:
        """What the state DB records of this verify."""
        return "damaged" if self.damaged else "failed" if self.problems else "passed"

    def raise_for_problems(self) -> None:
        """BackupError listing the problems, if any."""
        if self.problems:
            raise BackupError(
                f"backup {self.tenant}/{self.backup_id} failed verification: "
                + "; ".join(self.problems)
            )


def _check_object(
    store: ObjectStore,
    prefix: str,
    entry: ObjectEntry,
    identities: Sequence[str],
    report: VerifyReport,
) -> None:
    key = f"{prefix}/{entry.name}"
    info = store.head(key)
    if info is None:
        report.problems.append(f"{entry.name}: missing")
        return
    if info.size != entry.size:
        report.problems.append(f"{entry.name}: size {info.size}, manifest says {entry.size}")
        return
    can_decode = entry.compression == "zstd" and (not entry.encrypted or bool(identities))
    if not can_decode:
        chunks = store.get_stream(key)
        reader = HashingReader(IterReader(chunks))
        try:
            while reader.read(1024 * 1024):
                pass
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        size, sha, plain = reader.size, reader.sha256, None
    else:
        with decode_object(
            store=store, key=key, encrypted=entry.encrypted, identities=identities
        ) as (_plain, result):
            res = result()  # reads the whole object through every stage, output discarded
        size, sha, plain = res.size, res.sha256, (res.plain_size, res.plain_sha256)
        report.decoded = True
    report.bytes_read += size
    if size != entry.size or sha != entry.sha256:
        report.problems.append(f"{entry.name}: stored checksum mismatch")
    elif plain is not None and plain != (entry.plain_size, entry.plain_sha256):
        report.problems.append(f"{entry.name}: decoded content checksum mismatch")


def verify_backup(
    store: ObjectStore,
    tenant: str,
    backup_id: str,
    identities: Sequence[str] = (),
    *,
    mac_key: bytes | None = None,
    manifest: Manifest | None = None,
) -> VerifyReport:
    """Verify one backup fully; the report lists every problem found (never raises them).

    ``manifest``: check the objects against this one instead of the stored manifest
    (``backup repair`` checks the state DB's copy before writing it back).
    """
    t0 = time.monotonic()
    report = VerifyReport(tenant=tenant, backup_id=backup_id)
    prefix = backup_prefix(tenant, backup_id)
    if manifest is None:
        try:
            manifest = read_manifest(store, tenant, backup_id, mac_key=mac_key)
        except NotFoundError:
            report.problems.append(f"damaged: {MANIFEST} is missing")
            report.damaged = True
        except BackupError as e:
            report.problems.append(f"damaged: {e}")
            report.damaged = True
        if manifest is None:
            report.seconds = time.monotonic() - t0
            return report
    report.manifest = manifest
    listed = {o.name for o in manifest.body.objects} | {MANIFEST}
    for obj in store.list(f"{prefix}/"):
        name = obj.key.rsplit("/", 1)[1]
        if name not in listed:
            report.problems.append(f"{name}: not listed in the manifest")
    for entry in manifest.body.objects:
        try:
            _check_object(store, prefix, entry, identities, report)
            report.objects_checked += 1
        except OspOpsError as e:
            report.problems.append(f"{entry.name}: {e}")
    report.seconds = time.monotonic() - t0
    return report


def verify_backups(
    store: ObjectStore,
    tenant: str,
    identities: Sequence[str] = (),
    *,
    sample: float = 1.0,
    mac_key: bytes | None = None,
    completed: Collection[str] = (),
    rng: random.Random | None = None,
) -> list[VerifyReport]:
    """Verify all complete backups, or a random ``sample`` fraction of them (at least one).

    The newest backup is always among those checked. Damaged backups (manifest missing
    though in ``completed``, or unreadable) are reported as damaged; incomplete ones are
    not backups and are skipped.
    """
    if not 0 < sample <= 1:
        raise ValueError("sample must be in (0, 1]")
    infos = [i for i in list_backups(store, tenant, completed=completed) if i.state != "incomplete"]
    if not infos:
        return []
    chosen = infos
    if sample < 1:
        n = max(1, round(len(infos) * sample))
        newest, rest = infos[-1], infos[:-1]
        chosen = sorted([*(rng or random.Random()).sample(rest, n - 1), newest], key=_id)
    return [verify_backup(store, tenant, i.backup_id, identities, mac_key=mac_key) for i in chosen]


def _id(info: object) -> str:
    return str(getattr(info, "backup_id", ""))
