"""A tenant's upload bucket as a tar stream, and the staged copies a restore switches.

Kubernetes tenants with ``app_storage: s3`` keep their uploads in a bucket of their own
(``domain/storage.py``). A backup streams the bucket as a POSIX (pax) tar, one member
per object at its key, the object's content type in the pax header
``OSPOPS.content_type``; the backup pipeline compresses and encrypts it like a tar of a
directory. The tar is read back by ``tar -x`` too (restore by hand).

Restores and drills never write the live keys: they extract into ``.osp-ops/<name>/``
of the same bucket. :func:`switch` then moves the live keys aside and the staged ones
in, by server-side copies, while the app is stopped; each phase leaves a marker so a
rerun after a crash continues where it stopped.

Run as ``python -m osp_ops.backups.bucket_archive export|import ...`` by the backup
operations (a command like ``tar`` on hosts), the credentials in ``AWS_ACCESS_KEY_ID``
and ``AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from collections.abc import Iterator
from typing import IO

from osp_ops.backups.streams import IterReader
from osp_ops.domain.errors import BackupError, NotFoundError, OspOpsError
from osp_ops.domain.storage import STAGING, staging_prefix
from osp_ops.objects.base import CHUNK, check_key
from osp_ops.objects.s3 import S3Store

CONTENT_TYPE = "OSPOPS.content_type"
RESTORED = ".restored"  # <STAGING><name>.restored: the tar is all in <name>/
COPIED = ".copied"  # <STAGING><retired>.copied: the live keys are all in <retired>/
SWITCHED = ".switched"  # <STAGING><new>.switched: the staged keys are all live
MARKERS = (RESTORED, COPIED, SWITCHED)


def live_keys(store: S3Store) -> list[str]:
    """The app's keys: everything outside ``.osp-ops/``."""
    return [o.key for o in store.list("") if not o.key.startswith(STAGING)]


def export_tar(store: S3Store, out: IO[bytes]) -> int:
    """Write the live objects to ``out`` as a tar stream; return how many were written.

    Objects deleted by the app after the listing are skipped, and so are the empty
    "folder/" markers some S3 consoles create; other keys a tar cannot hold safely
    (``..``, empty parts) are refused.
    """
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for key in live_keys(store):
            if key.endswith("/"):
                continue
            check_key(key)
            try:
                size, content_type, chunks = store.get_object_stream(key)
            except NotFoundError:
                continue
            info = tarfile.TarInfo(key)
            info.size, info.mode = size, 0o644
            if content_type:
                info.pax_headers = {CONTENT_TYPE: content_type}
            tar.addfile(info, IterReader(chunks))
            count += 1
    return count


def _member_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def import_tar(store: S3Store, name: str, stream: IO[bytes]) -> int:
    """Empty ``.osp-ops/<name>/``, extract the tar read from ``stream`` into it, mark it whole."""
    prefix = staging_prefix(name)
    drop(store, name)
    count = 0
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key = member.name.removeprefix("./")
            check_key(key)
            data = tar.extractfile(member)
            if data is None:
                continue
            store.put_stream(
                prefix + key,
                _member_chunks(data),
                content_type=member.pax_headers.get(CONTENT_TYPE),
            )
            count += 1
    store.put_stream(f"{STAGING}{name}{RESTORED}", [b""])
    return count


def names(store: S3Store) -> list[str]:
    """The staged copies in the bucket (``media.restore-<ts>``, ``media.old-<ts>`` ...).

    A copy of an empty bucket has no keys, only its marker: it is listed too.
    """
    found = set()
    for obj in store.list(STAGING):
        rest = obj.key[len(STAGING) :]
        if "/" in rest:
            found.add(rest.split("/", 1)[0])
        else:
            for marker in MARKERS:
                if rest.endswith(marker):
                    found.add(rest.removesuffix(marker))
    return sorted(found)


def drop(store: S3Store, name: str) -> int:
    """Delete the staged copy ``name`` and its markers; return how many keys went."""
    base = f"{STAGING}{name}"  # one listing: <name>/... and <name>.<marker>, not <name>0/...
    keys = [o.key for o in store.list(base) if o.key[len(base) :].startswith(("/", *MARKERS))]
    return store.delete_many(keys)


def switch(store: S3Store, *, new: str, retired: str) -> None:
    """Live keys -> ``.osp-ops/<retired>/``, ``.osp-ops/<new>/`` -> live; safe to rerun.

    1. unless ``<retired>.copied`` exists: copy every live key into ``<retired>/``, then
       write the marker (a partial copy from a killed run is replaced);
    2. unless ``<new>.switched`` exists: copy every staged key to its live key, delete
       the live keys the staged copy does not have, then write the marker;
    3. delete ``<new>/`` and its markers: the switch is complete when ``<new>`` is gone.

    A staged copy without its ``.restored`` marker (an extraction that did not finish)
    is refused.
    """
    new_prefix, old_prefix = staging_prefix(new), staging_prefix(retired)
    copied, switched = f"{STAGING}{retired}{COPIED}", f"{STAGING}{new}{SWITCHED}"
    restored = f"{STAGING}{new}{RESTORED}"
    if store.head(switched) is None:
        if store.head(restored) is None:
            raise BackupError(f"the restored files {new} are incomplete: nothing switched")
        staged = [o.key[len(new_prefix) :] for o in store.list(new_prefix)]
        if store.head(copied) is None:
            store.delete_many(o.key for o in store.list(old_prefix))
            for key in live_keys(store):
                store.copy(key, old_prefix + key)
            store.put_stream(copied, [b""])
        for key in staged:
            store.copy(new_prefix + key, key)
        keep = set(staged)
        store.delete_many(k for k in live_keys(store) if k not in keep)
        store.put_stream(switched, [b""])
    store.delete_many(o.key for o in store.list(new_prefix))
    store.delete_many([restored, switched])


def _store(args: argparse.Namespace) -> S3Store:
    return S3Store(bucket=args.bucket, endpoint_url=args.endpoint or None, region=args.region)


def main(argv: list[str] | None = None) -> int:
    """``export --bucket B`` (tar on stdout) or ``import --bucket B --name N`` (tar on stdin)."""
    parser = argparse.ArgumentParser(prog="python -m osp_ops.backups.bucket_archive")
    parser.add_argument("action", choices=["export", "import"])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--name", help="staged copy to extract into (import)")
    args = parser.parse_args(argv)
    try:
        store = _store(args)
        if args.action == "export":
            n = export_tar(store, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            if not args.name:
                parser.error("import needs --name")
            n = import_tar(store, args.name, sys.stdin.buffer)
    except (OspOpsError, tarfile.TarError, OSError) as e:
        print(f"bucket {args.bucket}: {e}", file=sys.stderr)
        return 1
    print(f"bucket {args.bucket}: {n} objects", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
