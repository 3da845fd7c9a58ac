"""Hosts backups reach the files where the app keeps them (its profile's data path).

A Decidim tenant's uploads live in ``<srv dir>/<directory>/storage``
(``roles/app_decidim/tasks/configure.yml``), OpenSlides' in ``data/media``. The
commands run for real on this machine (``ansible_connection: local``), under a
temporary host root.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from osp_ops.domain.names import tenant_names
from osp_ops.platforms.hosts.data import HostsBackupAccess
from osp_ops.settings import Settings
from tests.factories import make_spec

pytestmark = pytest.mark.unit

DECIDIM = make_spec("lyon", app="decidim", platform="hosts")
OPENSLIDES = make_spec("nanterre", app="openslides", platform="hosts")


def _access(root: Path) -> HostsBackupAccess:
    hostvars = {"ansible_connection": "local", "osp_host_root": str(root)}
    return HostsBackupAccess(lambda spec: hostvars, Settings(data_dir=root / "data"))


def _tenant_dir(root: Path, slug: str) -> Path:
    return root / "srv" / "osp-ops" / tenant_names(slug).directory


def _members(argv: tuple[str, ...]) -> list[str]:
    proc = subprocess.run(argv, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_decidim_backup_reads_its_storage_directory(tmp_path: Path) -> None:
    storage = _tenant_dir(tmp_path, "lyon") / "storage"
    (storage / "ab" / "cd").mkdir(parents=True)
    (storage / "ab" / "cd" / "abcd1234").write_bytes(b"an uploaded photo")
    command = _access(tmp_path).files_command(DECIDIM)
    assert command is not None
    assert _members(command.argv) == ["./ab/cd/abcd1234"]


def test_a_decidim_restore_switches_its_storage_directory(tmp_path: Path) -> None:
    tenant = _tenant_dir(tmp_path, "lyon")
    (tenant / "storage").mkdir(parents=True)
    (tenant / "storage" / "before").write_bytes(b"live")
    access = _access(tmp_path)
    restore = access.files_restore_command(DECIDIM, "media.restore-1")
    proc = subprocess.run(restore.argv, input=_tar({"./ab/restored": b"backup"}), check=False)
    assert proc.returncode == 0
    access.switch_files(DECIDIM, new="media.restore-1", retired="media.old-1")
    assert (tenant / "storage" / "ab" / "restored").read_bytes() == b"backup"
    assert (tenant / "media.old-1" / "before").read_bytes() == b"live"
    assert access.list_files(DECIDIM, "media.old-*") == ["media.old-1"]
    access.switch_files(DECIDIM, new="media.restore-1", retired="media.old-1")  # a rerun
    assert (tenant / "storage" / "ab" / "restored").read_bytes() == b"backup"
    access.drop_files(DECIDIM, "media.old-1")
    assert sorted(p.name for p in tenant.iterdir()) == ["storage"]


def test_openslides_files_stay_in_data_media(tmp_path: Path) -> None:
    media = _tenant_dir(tmp_path, "nanterre") / "data" / "media"
    (media / "file").mkdir(parents=True)
    (media / "file" / "agenda.pdf").write_bytes(b"%PDF")
    access = _access(tmp_path)
    command = access.files_command(OPENSLIDES)
    assert command is not None
    assert _members(command.argv) == ["./file/agenda.pdf"]
    assert access.files_dir(OPENSLIDES) == str(media)
