"""Objects as files under a directory (``file:///var/lib/osp-ops/backups``)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from osp_ops import failpoints
from osp_ops.domain.errors import BackupError, NotFoundError, TemporaryError
from osp_ops.objects.base import CHUNK, TMP_MARK, ObjectInfo, check_key


class LocalStore:
    """Objects as files under a directory.

    ``put_stream`` writes ``<dir>/.osp-tmp-<random>-<name>`` next to the final file,
    fsyncs it, renames it into place and fsyncs the directory: a killed writer leaves
    only a temp file, which ``list`` ignores and ``cleanup_incomplete`` removes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write atomically (temp file, fsync, rename, fsync dir)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{TMP_MARK}{secrets.token_hex(4)}-{path.name}")
            digest = hashlib.sha256()
            size = 0
            try:
                with open(tmp, "wb") as f:
                    for i, chunk in enumerate(chunks):
                        f.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if i == 0:
                            failpoints.hit("backup:mid-part")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            _fsync_dir(path.parent)
        except OSError as e:
            raise _os_error(f"cannot write {key}", e) from e
        return size, digest.hexdigest()

    def get_stream(self, key: str) -> Iterator[bytes]:
        """Yield the file in 1 MiB chunks."""
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as e:
            raise NotFoundError(f"backup object {key} does not exist") from e
        except OSError as e:
            raise _os_error(f"cannot read {key}", e) from e
        return _read_chunks(f)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Read a byte range."""
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(length)
        except FileNotFoundError as e:
            raise NotFoundError(f"backup object {key} does not exist") from e
        except OSError as e:
            raise _os_error(f"cannot read {key}", e) from e

    def head(self, key: str) -> ObjectInfo | None:
        """Size of the file, or None."""
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _os_error(f"cannot stat {key}", e) from e
        return ObjectInfo(key, st.st_size)

    def _walk(self, prefix: str) -> Iterator[tuple[Path, str]]:
        # Walk only below the deepest directory the prefix names.
        base_rel = prefix.rpartition("/")[0]
        base = self.root / base_rel if base_rel else self.root
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    yield full, rel

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Complete objects under the prefix (temp files are not objects)."""
        out = []
        try:
            for full, rel in self._walk(prefix):
                if TMP_MARK not in full.name:
                    out.append(ObjectInfo(rel, full.stat().st_size))
        except OSError as e:
            raise _os_error(f"cannot list {prefix}", e) from e
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Remove the file and any directories left empty."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise _os_error(f"cannot delete {key}", e) from e
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def cleanup_incomplete(self, prefix: str) -> int:
        """Remove temp files left by killed writers."""
        count = 0
        for full, _rel in list(self._walk(prefix)):
            if full.name.startswith(TMP_MARK):
                with contextlib.suppress(FileNotFoundError):
                    full.unlink()
                    count += 1
        return count


def _read_chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(what: str, e: OSError) -> BackupError | TemporaryError:
    if e.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY):
        return TemporaryError(f"{what}: {e.strerror}")
    return BackupError(f"{what}: {e.strerror or e}")
