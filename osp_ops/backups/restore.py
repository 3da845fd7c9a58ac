"""Restore: verify the backup, then stream it into a new database and a new directory.

The database goes into ``target_dsn`` (a new, empty database the caller created) or into
the stdin of ``target_command`` (``pg_restore`` started wherever the database is, e.g.
on a host over SSH); the files into ``target_dir`` (absent or empty) or the stdin of
``files_command`` (``tar -x`` on the host). Nothing is switched: once this returns,
the caller points the app at the restored database and files. The stream is checked
again while it flows (sizes and SHA-256 of stored and plain bytes); a mismatch kills
``pg_restore`` before it sees the end of its input and fails the restore.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from osp_ops.backups.catalog import read_manifest
from osp_ops.backups.manifest import Manifest, ObjectEntry, Reporter, backup_prefix
from osp_ops.backups.pipeline import DecodeResult, copy_stream, decode_object
from osp_ops.backups.verify import verify_backup
from osp_ops.domain.errors import BackupError
from osp_ops.domain.libpq import libpq_env
from osp_ops.objects.base import ObjectStore

PG_RESTORE_ARGS = ("--no-owner", "--no-privileges", "--exit-on-error")


@dataclass(frozen=True)
class Sink:
    """A command that reads a stream on stdin (``pg_restore ...``, ``ssh host tar -x``).

    Secrets go in ``env``, never in ``argv``.
    """

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    backup_id: str
    manifest: Manifest
    database_restored: bool
    files_restored: bool
    seconds: float


def _check(entry: ObjectEntry, res: DecodeResult) -> None:
    if (res.size, res.sha256) != (entry.size, entry.sha256):
        raise BackupError(f"{entry.name}: stored checksum mismatch during restore")
    if (res.plain_size, res.plain_sha256) != (entry.plain_size, entry.plain_sha256):
        raise BackupError(f"{entry.name}: decoded checksum mismatch during restore")


def _database_sink(
    entry: ObjectEntry, target_dsn: str, bin_dir: Path | None, pg_restore_args: Sequence[str]
) -> Sink:
    env = libpq_env(target_dsn)
    if entry.format == "pg_dump-custom":
        tool = str(bin_dir / "pg_restore") if bin_dir else "pg_restore"
        return Sink([tool, "--no-password", *pg_restore_args, "-d", env["PGDATABASE"]], env)
    if entry.format == "pg_dump-plain":
        tool = str(bin_dir / "psql") if bin_dir else "psql"
        return Sink(
            [tool, "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-o", os.devnull], env
        )
    raise BackupError(f"{entry.name}: unknown database dump format {entry.format!r}")


def _feed(
    *, store: ObjectStore, prefix: str, entry: ObjectEntry, identities: Sequence[str], sink: Sink
) -> None:
    """Stream the decoded object into the sink's stdin; fail on its exit status."""
    with tempfile.TemporaryFile() as errf:
        try:
            proc = subprocess.Popen(
                list(sink.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errf,
                env={**os.environ, **sink.env},
            )
        except OSError as e:
            raise BackupError(f"cannot start {sink.argv[0]}: {e.strerror or e}") from e
        assert proc.stdin is not None
        try:
            with decode_object(
                store=store, key=f"{prefix}/{entry.name}", encrypted=entry.encrypted,
                identities=identities,
            ) as (reader, result):  # fmt: skip
                with contextlib.suppress(BrokenPipeError):
                    copy_stream(reader, proc.stdin)
                _check(entry, result())
            proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        rc = proc.wait()
        errf.seek(0)
        err = errf.read()[-3000:].decode("utf-8", "replace").strip()
    if rc != 0:
        raise BackupError(f"{Path(sink.argv[0]).name} failed with status {rc}: {err}")


def _restore_files(
    *, store: ObjectStore, prefix: str, entry: ObjectEntry, identities: Sequence[str], target: Path
) -> None:
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"restore target {target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    with decode_object(
        store=store, key=f"{prefix}/{entry.name}", encrypted=entry.encrypted, identities=identities
    ) as (reader, result):
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                _extract(tar, target)
        except tarfile.TarError as e:
            raise BackupError(f"{entry.name}: not a valid tar stream: {e}") from e
        _check(entry, result())


def restore_backup(
    *,
    store: ObjectStore,
    tenant: str,
    backup_id: str,
    identities: Sequence[str],
    target_dsn: str | None = None,
    target_dir: Path | None = None,
    target_command: Sink | None = None,
    files_command: Sink | None = None,
    mac_key: bytes | None = None,
    bin_dir: Path | None = None,
    pg_restore_args: Sequence[str] = PG_RESTORE_ARGS,
    verify_first: bool = True,
    reporter: Reporter | None = None,
) -> RestoreReport:
    """Verify the backup end to end, then restore its database and/or files.

    ``identities``: the tenant's age secret key or the ops recovery key.
    ``target_command`` (instead of ``target_dsn``) reads a custom-format archive on
    stdin; ``files_command`` (instead of ``target_dir``) reads the files' tar. Raises
    BackupError if verification fails (nothing is restored) or a restore step fails.
    """
    report = reporter or (lambda _msg: None)
    t0 = time.monotonic()
    if verify_first:
        report(f"verifying backup {backup_id}")
        check = verify_backup(store, tenant, backup_id, identities, mac_key=mac_key)
        check.raise_for_problems()
        assert check.manifest is not None
        manifest = check.manifest
    else:
        manifest = read_manifest(store, tenant, backup_id, mac_key=mac_key)
    prefix = backup_prefix(tenant, backup_id)
    db = manifest.body.object("database")
    files = manifest.body.object("files")
    sink: Sink | None = None
    if target_dsn is not None or target_command is not None:
        if db is None:
            raise BackupError(f"backup {backup_id} has no database dump")
        if target_command is None:
            assert target_dsn is not None
            sink = _database_sink(db, target_dsn, bin_dir, pg_restore_args)
        elif db.format != "pg_dump-custom":
            raise BackupError(f"{db.name}: format {db.format!r} needs a DSN to restore into")
        else:
            sink = target_command
        report(f"restoring the database from {db.name}")
        _feed(store=store, prefix=prefix, entry=db, identities=identities, sink=sink)
    if target_dir is not None and files is not None:
        report(f"restoring files from {files.name} into {target_dir}")
        _restore_files(
            store=store, prefix=prefix, entry=files, identities=identities, target=target_dir
        )
    elif files_command is not None and files is not None:
        report(f"restoring files from {files.name}")
        _feed(store=store, prefix=prefix, entry=files, identities=identities, sink=files_command)
    return RestoreReport(
        backup_id=backup_id,
        manifest=manifest,
        database_restored=sink is not None,
        files_restored=files is not None and (target_dir or files_command) is not None,
        seconds=time.monotonic() - t0,
    )


def _extract(tar: tarfile.TarFile, target: Path) -> None:
    """Extract a tar stream under ``target`` with the rules of tarfile's "data" filter.

    Python 3.11.4 added the filter; Debian 12's python3 is 3.11.2 and has none, so
    there each member is checked here: files, directories and links only, nothing
    outside ``target`` (absolute paths, ``..``, links leaving it), no set-id bits.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(target, filter="data")
        return
    root = target.resolve()
    for member in tar:
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise BackupError(f"refusing tar member {member.name!r}: not a file or directory")
        dest = (root / member.name).resolve()
        if member.name.startswith("/") or not dest.is_relative_to(root):
            raise BackupError(f"refusing tar member {member.name!r}: outside {target}")
        if member.issym() or member.islnk():
            base = dest.parent if member.issym() else root
            if member.linkname.startswith("/") or not (
                base / member.linkname
            ).resolve().is_relative_to(root):
                raise BackupError(f"refusing tar link {member.name!r}: it points outside {target}")
        # As the filter does: no set-id or sticky bits, no group/other write, the
        # extracting user's ownership (attributes are not applied, the mode is set here).
        tar.extract(member, root, set_attrs=False)
        if member.isfile() or member.isdir():
            os.chmod(dest, (member.mode & 0o755) | (0o700 if member.isdir() else 0o600))
