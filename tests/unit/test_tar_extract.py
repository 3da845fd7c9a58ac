"""Restores extract file archives with the rules of tarfile's "data" filter, also on
Debian 12's Python 3.11.2, which predates the filter (the fallback branch is forced
here by hiding ``tarfile.data_filter``, as that Python lacks it)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from osp_ops.backups.restore import _extract
from osp_ops.domain.errors import BackupError

pytestmark = pytest.mark.unit


def _tar(*members: tuple[str, bytes | None, str | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o6777
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o4777
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture(params=["filter", "fallback"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


def test_files_dirs_and_inner_links_extract_without_set_id_bits(mode: str, tmp_path: Path) -> None:
    src = _tar(("media", None, None), ("media/a.pdf", b"plan", None), ("media/b", None, "a.pdf"))
    with tarfile.open(fileobj=src, mode="r|") as tar:
        _extract(tar, tmp_path)
    assert (tmp_path / "media" / "a.pdf").read_bytes() == b"plan"
    assert (tmp_path / "media" / "b").resolve() == (tmp_path / "media" / "a.pdf").resolve()
    assert (tmp_path / "media" / "a.pdf").stat().st_mode & 0o7022 == 0


@pytest.mark.parametrize(
    "member",
    [("../evil", b"x", None), ("media/out", None, "/etc/passwd"),
     ("media/up", None, "../../outside")],
)  # fmt: skip
def test_members_leaving_the_target_are_refused(
    mode: str, tmp_path: Path, member: tuple[str, bytes | None, str | None]
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    with (
        tarfile.open(fileobj=_tar(("media", None, None), member), mode="r|") as tar,
        pytest.raises((BackupError, tarfile.TarError)),
    ):
        _extract(tar, target)
    assert not (tmp_path / "evil").exists()
