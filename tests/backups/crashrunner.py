"""Run one backup in a separate process, so a failpoint can SIGKILL it.

``python -m tests.backups.crashrunner '<json>'`` with keys ``store`` ({"local": dir} or
{"s3": {bucket, prefix, endpoint_url, region, access_key, secret_key}}), ``argv``
(the dump command), ``files`` (a directory or null), ``recipients``. Prints the
backup id on success.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from osp_ops.backups import CommandSource, DirectorySource, LocalStore, ObjectStore, run_backup


def make_store(cfg: dict[str, object]) -> ObjectStore:
    if "local" in cfg:
        return LocalStore(Path(str(cfg["local"])))
    from osp_ops.objects.s3 import S3Store

    s3 = cfg["s3"]
    assert isinstance(s3, dict)
    return S3Store(
        bucket=s3["bucket"], prefix=s3["prefix"], endpoint_url=s3["endpoint_url"],
        region=s3["region"], base_part_size=5 * 1024 * 1024,
        credentials={"access_key": s3["access_key"], "secret_key": s3["secret_key"]},
        max_attempts=int(s3.get("max_attempts", 5)),
        connect_timeout=float(s3.get("timeout", 5)), read_timeout=float(s3.get("timeout", 60)),
    )  # fmt: skip


def main() -> None:
    args = json.loads(sys.argv[1])
    manifest = run_backup(
        source=CommandSource(args["argv"]),
        files=DirectorySource(Path(args["files"])) if args.get("files") else None,
        store=make_store(args["store"]),
        tenant="nanterre", spec_yaml="slug: nanterre\n", recipients=args["recipients"],
        app_version="0.28.4", row_counts={},
    )  # fmt: skip
    print(manifest.backup_id)


if __name__ == "__main__":
    main()
