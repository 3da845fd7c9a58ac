"""The streaming pipeline: source -> zstd -> age -> SHA-256 -> object store, and back.

Nothing lands on disk and memory stays bounded whatever the size. Each stage is a
thread, joined to the next by a :class:`ChunkPipe` of at most 4 chunks of about 1 MiB,
so the stages overlap (zstd and hashlib release the GIL; age does not, but is cheap)::

    pg_dump stdout (1 MiB pipe buffer)
      ─► [read]     1 MiB reads, size + SHA-256 of the plain bytes
      ─► [compress] zstandard compressobj, level 3
      ─► [encrypt]  pyrage.encrypt_io (age v1 STREAM format)
      ─► [caller]   store.put_stream: size + SHA-256 of the stored bytes, upload

The read stage checks the source's exit status *before* it closes its pipe: a failed
``pg_dump`` makes ``put_stream`` fail, so the store never commits its object. The
first failure of any stage (or of the store) cancels every pipe; that error is raised.
The stored bytes are a standard ``.zst.age`` file: ``age -d -i key | zstd -dc`` reads it.

Decoding is the mirror image (:func:`decode_object`): [download + stored SHA-256] ->
[age decrypt] -> [zstd decompress + plain SHA-256] -> the consumer, with both
checksums compared by the caller at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, cast

import pyrage
import zstandard

from osp_ops.backups.streams import CHUNK, ChunkPipe, CountingWriter, Digest, PipeClosedError
from osp_ops.domain.errors import BackupError, OspOpsError
from osp_ops.domain.libpq import libpq_env
from osp_ops.objects.base import ObjectStore

ZSTD_LEVEL = 3
DEPTH = 4  # chunks in flight between two stages
PIPE_SIZE = 1024 * 1024  # the source's pipe buffer (Linux; the default 64 KiB wakes us often)


class Source(Protocol):
    """Something that yields a plain byte stream, and says at the end whether it worked."""

    kind: str

    def open(self) -> IO[bytes]:
        """Start producing; return the readable stream."""
        ...

    def finish(self) -> None:
        """Wait for the producer; raise BackupError if it failed. Called after EOF."""
        ...

    def kill(self) -> None:
        """Stop the producer early (the upload failed)."""
        ...


@dataclass
class CommandSource:
    """A command whose stdout is the stream (``pg_dump -Fc -Z0``, ``ssh host pg_dump ...``).

    Secrets go in ``env`` (``PGPASSWORD``) or a 0600 passfile named by ``PGPASSFILE``,
    never in ``argv``: argv is visible to every user of the host in ``ps``.
    ``kind`` is recorded in the manifest: ``pg_dump-custom``, ``pg_dump-plain`` or ``tar``.
    """

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    kind: str = "pg_dump-custom"
    versions: Mapping[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stderr: IO[bytes] | None = field(default=None, init=False, repr=False)

    def open(self) -> IO[bytes]:
        """Start the command."""
        import tempfile

        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        try:
            self._proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env={**os.environ, **self.env},
            )
        except OSError as e:
            raise BackupError(f"cannot start {self.argv[0]}: {e.strerror or e}") from e
        assert self._proc.stdout is not None
        return self._proc.stdout

    def finish(self) -> None:
        """Raise BackupError (with the command's stderr) on a non-zero exit."""
        assert self._proc is not None and self._stderr is not None
        rc = self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.seek(0)
        err = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        self._stderr.close()
        if rc != 0:
            raise BackupError(f"{Path(self.argv[0]).name} exited with status {rc}: {err}")

    def kill(self) -> None:
        """Kill the command."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()


def pg_dump_source(
    dsn: str, *, bin_dir: Path | None = None, plain: bool = False, extra: Sequence[str] = ()
) -> CommandSource:
    """A local ``pg_dump`` of the DSN's database (custom format, uncompressed: zstd does it).

    Records the pg_dump and server versions for the manifest.
    """
    tool = str(bin_dir / "pg_dump") if bin_dir else "pg_dump"
    psql = str(bin_dir / "psql") if bin_dir else "psql"
    env = libpq_env(dsn)
    versions: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        versions["pg_dump"] = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        versions["server"] = subprocess.run(
            [psql, "-XAtc", "SHOW server_version"],
            capture_output=True, text=True, check=True, timeout=30, env={**os.environ, **env},
        ).stdout.strip()  # fmt: skip
    fmt = ["-Fp"] if plain else ["-Fc", "-Z0"]
    return CommandSource(
        argv=[tool, *fmt, "--no-password", *extra],
        env=env,
        kind="pg_dump-plain" if plain else "pg_dump-custom",
        versions=versions,
    )


@dataclass
class DirectorySource:
    """The files under ``root`` as an uncompressed tar stream (``tarfile`` mode ``w|``).

    A thread writes the tar into an OS pipe; paths in the tar are relative to ``root``.
    """

    root: Path
    kind: str = "tar"
    versions: Mapping[str, str] = field(default_factory=dict)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _error: BaseException | None = field(default=None, init=False, repr=False)
    _read: IO[bytes] | None = field(default=None, init=False, repr=False)

    def open(self) -> IO[bytes]:
        """Start the tar writer thread."""
        if not self.root.is_dir():
            raise BackupError(f"files directory {self.root} does not exist")
        rfd, wfd = os.pipe()
        self._read = os.fdopen(rfd, "rb")
        self._thread = threading.Thread(target=self._write, args=(wfd,), daemon=True)
        self._thread.start()
        return self._read

    def _write(self, wfd: int) -> None:
        try:
            with (
                os.fdopen(wfd, "wb") as out,
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for path in sorted(self.root.rglob("*")):
                    tar.add(path, arcname=path.relative_to(self.root).as_posix(), recursive=False)
        except BaseException as e:
            self._error = e

    def finish(self) -> None:
        """Raise BackupError if writing the tar failed."""
        assert self._thread is not None
        self._thread.join()
        if self._read is not None:
            self._read.close()
        if self._error is not None:
            if isinstance(self._error, BrokenPipeError):
                raise BackupError("tar stream interrupted") from self._error
            raise BackupError(f"cannot archive {self.root}: {self._error}") from self._error

    def kill(self) -> None:
        """Close the read end: the writer thread gets a broken pipe and stops."""
        if self._read is not None:
            with contextlib.suppress(OSError):
                self._read.close()
        if self._thread is not None:
            self._thread.join(timeout=30)


DumpSource = CommandSource
"""The database source: a command printing a dump (``pg_dump_source`` builds one)."""

FilesSource = DirectorySource | CommandSource
"""The files source: a local directory, or a command printing a tar (``ssh host tar -c``)."""


@dataclass(frozen=True)
class Encoding:
    """How stored bytes encode plain bytes: zstd level and age recipients (none = plain)."""

    recipients: tuple[str, ...] = ()
    zstd_level: int = ZSTD_LEVEL

    @property
    def suffix(self) -> str:
        """File name suffix: ``.zst.age`` or ``.zst``."""
        return ".zst.age" if self.recipients else ".zst"


@dataclass(frozen=True)
class StoredStream:
    """What was stored for one stream."""

    key: str
    size: int
    sha256: str
    plain_size: int
    plain_sha256: str
    seconds: float


def parse_recipients(recipients: Sequence[str]) -> list[pyrage.x25519.Recipient]:
    """age X25519 recipients from ``age1...`` strings; BackupError names a bad one."""
    out = []
    for r in recipients:
        try:
            out.append(pyrage.x25519.Recipient.from_str(r.strip()))
        except Exception as e:
            raise BackupError(f"not an age public key: {r[:12]}...") from e
    return out


def parse_identities(identities: Sequence[str]) -> list[pyrage.x25519.Identity]:
    """age X25519 identities from ``AGE-SECRET-KEY-1...`` strings (or key files' text)."""
    out = []
    for ident in identities:
        for line in ident.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                out.append(pyrage.x25519.Identity.from_str(line))
            except Exception as e:
                raise BackupError("not an age secret key") from e
    return out


def new_identity() -> tuple[str, str]:
    """A new age X25519 key pair: (secret ``AGE-SECRET-KEY-1...``, public ``age1...``)."""
    ident = pyrage.x25519.Identity.generate()
    return str(ident), str(ident.to_public())


class _Stages:
    """Threads joined by ChunkPipes; the first failure is kept and cancels every pipe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pipes: list[ChunkPipe] = []
        self.threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def pipe(self) -> ChunkPipe:
        """A new pipe between two stages."""
        pipe = ChunkPipe(chunk_size=CHUNK, depth=DEPTH)
        self.pipes.append(pipe)
        return pipe

    def start(
        self,
        what: str,
        work: Callable[[], None],
        convert: Callable[[BaseException], BaseException] = lambda e: e,
    ) -> None:
        """Run ``work`` in a thread; its failure (``convert``-ed) stops the pipeline."""

        def run() -> None:
            try:
                work()
            except BaseException as e:
                self.fail(e if isinstance(e, PipeClosedError) else convert(e))

        thread = threading.Thread(target=run, name=f"{what} {self.name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def fail(self, error: BaseException) -> None:
        """Keep ``error`` unless an earlier one is kept; cancel every pipe with it."""
        with self._lock:
            if self.error is None:
                self.error = error
            first = self.error
        for pipe in self.pipes:
            pipe.cancel(first)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the stage threads."""
        for thread in self.threads:
            thread.join(timeout)


def _widen_pipe(stream: IO[bytes]) -> None:
    """Give a pipe a 1 MiB buffer (fewer wake-ups of pg_dump and of the reader)."""
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def encode_to_store(
    *, source: Source, store: ObjectStore, key: str, encoding: Encoding
) -> StoredStream:
    """Stream ``source`` through zstd and age into ``store`` under ``key``.

    Raises BackupError (source failed, bad recipient) or the store's error; in both
    cases the store did not commit the object.
    """
    recipients = parse_recipients(encoding.recipients)
    t0 = time.monotonic()
    stages = _Stages(key)
    plain_pipe = stages.pipe()
    compressed = stages.pipe()
    stored = stages.pipe() if recipients else compressed
    plain = Digest()
    stream = source.open()
    _widen_pipe(stream)

    def read() -> None:
        while chunk := stream.read(CHUNK):
            plain.update(chunk)
            plain_pipe.put(chunk)
        source.finish()  # the exit status decides, before the end of the stream
        plain_pipe.close()

    def compress() -> None:
        zobj = zstandard.ZstdCompressor(level=encoding.zstd_level).compressobj()
        for chunk in plain_pipe.chunks():
            compressed.write(zobj.compress(chunk))
        compressed.write(zobj.flush())
        compressed.close()

    def encrypt() -> None:
        pyrage.encrypt_io(compressed.reader(), stored, recipients)
        stored.close()

    stages.start("read", read, _as_backup_error)
    stages.start("compress", compress, _as_backup_error)
    if recipients:
        stages.start("encrypt", encrypt, _as_backup_error)
    try:
        size, sha = store.put_stream(key, stored.chunks())
    except BaseException as e:
        stages.fail(e)
        source.kill()
        stages.join(timeout=60)
        if stages.error is not None and stages.error is not e:
            raise stages.error from None  # the stage that failed first says why
        raise
    stages.join()
    return StoredStream(key, size, sha, plain.size, plain.sha256, time.monotonic() - t0)


def encode_bytes(
    *, data: bytes, store: ObjectStore, key: str
) -> StoredStream:  # small plain objects (spec.yaml)
    """Store small bytes as they are (no compression, no encryption)."""
    t0 = time.monotonic()
    size, sha = store.put_stream(key, [data])
    return StoredStream(key, size, sha, size, sha, time.monotonic() - t0)


def _as_backup_error(e: BaseException, what: str = "encoding failed") -> BaseException:
    if isinstance(e, OspOpsError | KeyboardInterrupt | SystemExit):
        return e
    err = BackupError(f"{what}: {e}")
    err.__cause__ = e
    return err


@dataclass(frozen=True)
class DecodeResult:
    """Checksums seen while decoding an object."""

    size: int
    sha256: str
    plain_size: int
    plain_sha256: str


@contextlib.contextmanager
def decode_object(
    *, store: ObjectStore, key: str, encrypted: bool, identities: Sequence[str]
) -> Iterator[tuple[IO[bytes], Callable[[], DecodeResult]]]:
    """Open a stored object as a plain stream: download -> age decrypt -> zstd decompress.

    Yields ``(reader, result)``: read the plain bytes from ``reader`` (or not: ``result``
    reads what is left), then call ``result()`` for the sizes and checksums actually
    seen; it raises BackupError if decryption or decompression failed. Each stage is a
    thread feeding a bounded pipe.
    """
    idents = parse_identities(identities) if encrypted else []
    if encrypted and not idents:
        raise BackupError(f"{key} is encrypted and no age identity was given")
    chunks = store.get_stream(key)
    stages = _Stages(key)
    raw_pipe = stages.pipe()
    compressed = stages.pipe() if encrypted else raw_pipe
    plain_pipe = stages.pipe()
    raw, plain = Digest(), Digest()

    def download() -> None:
        try:
            for chunk in chunks:
                raw.update(chunk)
                raw_pipe.put(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        raw_pipe.close()

    def decrypt() -> None:
        pyrage.decrypt_io(raw_pipe.reader(), compressed, idents)
        compressed.close()

    def decompress() -> None:
        source = compressed.reader()
        try:
            with zstandard.ZstdDecompressor().stream_reader(
                cast(IO[bytes], source), read_size=CHUNK, closefd=False
            ) as zr:
                while chunk := zr.read(CHUNK):
                    plain.update(chunk)
                    plain_pipe.put(chunk)
        except zstandard.ZstdError as e:
            raise BackupError(f"{key}: cannot decompress: {e}") from e
        while source.read(CHUNK):  # bytes after the frame still count as stored bytes
            pass
        plain_pipe.close()

    stages.start("download", download, lambda e: _as_backup_error(e, f"{key}: download"))
    if encrypted:
        stages.start("decrypt", decrypt, lambda e: _decrypt_error(key, e))
    stages.start("decompress", decompress, lambda e: _as_backup_error(e, f"{key}: decoding"))
    reader = io.BufferedReader(plain_pipe.reader(), CHUNK)

    def result() -> DecodeResult:
        while reader.read(CHUNK):  # what the consumer left
            pass
        stages.join()
        if stages.error is not None:
            raise stages.error
        return DecodeResult(raw.size, raw.sha256, plain.size, plain.sha256)

    try:
        yield reader, result
    finally:
        stages.fail(PipeClosedError("decoding stopped"))  # no-op when the stages are done
        stages.join(timeout=60)


def _decrypt_error(key: str, e: BaseException) -> BaseException:
    if isinstance(e, OspOpsError):
        return e
    if type(e).__name__ == "PipeClosedError":
        return e
    err = BackupError(f"{key}: cannot decrypt ({e}); wrong key or damaged object")
    err.__cause__ = e
    return err


def copy_stream(reader: IO[bytes], writer: IO[bytes] | CountingWriter) -> int:
    """Copy to the end in 1 MiB chunks; return the byte count."""
    n = 0
    while chunk := reader.read(CHUNK):
        writer.write(chunk)
        n += len(chunk)
    return n
