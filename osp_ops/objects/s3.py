"""S3 object store (AWS, MinIO, Ceph RGW): the only module that imports boto3/botocore.

Uploads
    A stream becomes one multipart upload. Part ``i`` (0-based) is
    ``8 MiB x 2**(i // 1000)`` bytes: 1000 parts of 8 MiB (8 GiB), then 1000 of 16 MiB,
    and so on, so the 10,000-part limit of S3 is only reached past 8 TiB, beyond S3's
    5 TiB object limit, while small backups use small parts. At most ``concurrency``
    parts are in flight on a small thread pool and one more is being filled, so memory
    stays below ``(concurrency + 2) x part size``. A part is the stream's own chunks
    behind a file object (no copy, and none by botocore). Streams smaller than one part are sent
    with one ``PutObject``. Any failure aborts the multipart upload; a killed process
    leaves it behind, and ``cleanup_incomplete`` (called at the start of every backup)
    aborts the uploads left under the tenant's prefix. ``buckets.ensure_lifecycle``
    adds a bucket rule that makes S3 itself abort them after one day.

Retries
    botocore's ``standard`` retry mode with ``max_attempts`` attempts (exponential
    backoff with jitter, on throttling, 5xx and connection errors) and short connect and
    read timeouts, so a permanent outage fails in bounded time. Downloads resume after a
    dropped connection with a ranged GET (same ETag), a bounded number of times.

Object lock
    With ``object_lock_days > 0`` every object is written with a retention of that
    many days in ``object_lock_mode`` (COMPLIANCE: nobody can delete it early, not even
    the root account; GOVERNANCE: users with ``s3:BypassGovernanceRetention`` can). The
    bucket must have been created with object lock enabled. Deleting a locked object
    only adds a delete marker; the locked version stays until its retention ends.

Checksums
    Every object's SHA-256 is computed inline and checked by re-reading it, so
    botocore's per-request checksums (CRC32) and SigV4 payload hashes are turned off,
    except for object lock uploads, which S3 requires a checksum header for.

Errors
    Every call runs inside :func:`s3_errors`, which translates: throttling, 5xx and
    connection problems -> TemporaryError; a missing key -> NotFoundError; no
    credentials -> ConfigError; anything else -> BackupError (``raise ... from e``).

Bucket administration (create, delete, lifecycle rules, the tenants' buckets) is in
``buckets.py``, through the same client and the same translation.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import itertools
import time
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import boto3
import botocore.exceptions
from botocore.config import Config

from osp_ops import failpoints
from osp_ops.domain.errors import (
    BackupError,
    ConfigError,
    NotFoundError,
    OspOpsError,
    TemporaryError,
)
from osp_ops.objects.base import ObjectInfo, check_key
from osp_ops.objects.parts import BASE_PART, MIB, Body, Parts, part_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_TEMPORARY_CODES = {
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestTimeTooSkewed", "503", "500", "502", "504",
    "XMinioServerNotInitialized",
}  # fmt: skip


def translate(e: Exception, what: str) -> OspOpsError:
    """The osp-ops error for a botocore error."""
    if isinstance(e, OspOpsError):
        return e
    if isinstance(e, botocore.exceptions.ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        msg = f"{what}: {code or status} {err.get('Message', '')}".strip()
        if code in MISSING:
            return NotFoundError(msg)
        if code in _TEMPORARY_CODES or status >= 500 or status == 429:
            return TemporaryError(msg, delay=5.0)
        return BackupError(msg)
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return ConfigError(f"{what}: no S3 credentials (set AWS_ACCESS_KEY_ID/SECRET)")
    if isinstance(
        e,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionError
        | botocore.exceptions.HTTPClientError
        | botocore.exceptions.ReadTimeoutError,
    ):
        return TemporaryError(f"{what}: {e}", delay=5.0)
    if isinstance(e, botocore.exceptions.BotoCoreError):
        return BackupError(f"{what}: {e}")
    return BackupError(f"{what}: {type(e).__name__}: {e}")


@contextlib.contextmanager
def s3_errors(what: str, *, ok: Collection[str] = ()) -> Iterator[None]:
    """Raise what the block raises as an osp-ops error (``translate``), the library's as cause.

    An S3 error whose code is in ``ok`` ends the block quietly and the caller carries on
    after it (a missing key, a bucket that is already ours); osp-ops errors pass as they are.
    """
    try:
        yield
    except OspOpsError:
        raise
    except botocore.exceptions.ClientError as e:
        if str(e.response.get("Error", {}).get("Code", "")) in ok:
            return
        raise translate(e, what) from e
    except Exception as e:
        raise translate(e, what) from e


class S3Store:
    """Objects in ``s3://bucket/prefix``; see the module docstring for the behaviour."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        object_lock_days: int = 0,
        object_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE",
        concurrency: int = 4,
        base_part_size: int = BASE_PART,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        credentials: dict[str, str] | None = None,
    ) -> None:
        if base_part_size < 5 * MIB:
            raise ConfigError("S3 parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.object_lock_days = object_lock_days
        self.object_lock_mode = object_lock_mode
        self.concurrency = max(1, concurrency)
        self.base_part_size = base_part_size
        self.max_attempts = max_attempts
        # Integrity is end to end already (SHA-256 of every object, age's authenticated
        # encryption, a full re-read after each backup), so botocore's own per-request
        # checksums and payload hashes are CPU spent twice; object lock uploads still
        # need a checksum header, so they keep botocore's.
        checksums: Literal["when_supported", "when_required"] = (
            "when_supported" if object_lock_days else "when_required"
        )
        s3_options: Any = {"payload_signing_enabled": False}
        if endpoint_url:
            s3_options["addressing_style"] = "path"
        config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=self.concurrency + 4,
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
            s3=s3_options,
        )
        creds = credentials or {}
        with s3_errors("cannot create the S3 client"):
            self.client: S3Client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                config=config,
                aws_access_key_id=creds.get("access_key"),
                aws_secret_access_key=creds.get("secret_key"),
            )

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _lock_args(self) -> dict[str, Any]:
        if not self.object_lock_days:
            return {}
        until = datetime.now(UTC) + timedelta(days=self.object_lock_days)
        return {"ObjectLockMode": self.object_lock_mode, "ObjectLockRetainUntilDate": until}

    # -- writing
    def put_stream(
        self, key: str, chunks: Iterable[bytes], *, content_type: str | None = None
    ) -> tuple[int, str]:
        """Upload the stream (multipart past one part); return (size, sha256)."""
        full = self._full(key)
        extra = {**self._lock_args(), **({"ContentType": content_type} if content_type else {})}
        digest = hashlib.sha256()
        size = 0
        buf = Parts()
        it = iter(chunks)
        target = part_size(0, self.base_part_size)
        # Fill the first part: if the stream ends before, one PutObject is enough.
        for chunk in it:
            buf.add(chunk)
            digest.update(chunk)
            size += len(chunk)
            if buf.size >= target:
                break
        else:
            with s3_errors(f"cannot upload {key}"):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=cast(IO[bytes], buf.take(size)),
                    **extra,
                )
            return size, digest.hexdigest()
        return self._multipart(key, full, buf, it, digest, size, extra)

    def _multipart(
        self,
        key: str,
        full: str,
        buf: Parts,
        rest: Iterator[bytes],
        digest: Any,
        size: int,
        extra: dict[str, Any],
    ) -> tuple[int, str]:
        with s3_errors(f"cannot start the upload of {key}"):
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=full, **extra)
        upload_id = created["UploadId"]
        failpoints.hit("backup:after-multipart-create")
        parts: list[dict[str, Any]] = []
        pending: deque[Future[dict[str, Any]]] = deque()
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="s3-part")

        def send(number: int, data: Body) -> dict[str, Any]:
            resp = self.client.upload_part(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=number,
                Body=cast(IO[bytes], data),
            )
            return {"PartNumber": number, "ETag": resp["ETag"]}

        def submit(data: Body) -> None:
            while len(pending) >= self.concurrency:
                parts.append(pending.popleft().result())
                if len(parts) == 1:
                    failpoints.hit("backup:mid-part")
            pending.append(pool.submit(send, len(parts) + len(pending) + 1, data))

        try:
            with s3_errors(f"cannot upload {key}"):
                index = 0
                while True:
                    target = part_size(index, self.base_part_size)
                    while buf.size < target:
                        chunk = next(rest, None)
                        if chunk is None:
                            break
                        buf.add(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                    data = buf.take(target)
                    if not data:
                        break
                    submit(data)
                    index += 1
                    if len(data) < target:
                        break
                while pending:
                    parts.append(pending.popleft().result())
                    if len(parts) == 1:
                        failpoints.hit("backup:mid-part")
                failpoints.hit("backup:before-complete")
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])},  # type: ignore[arg-type]
                )
        except BaseException:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            self._abort(full, upload_id)
            raise
        pool.shutdown(wait=True)
        return size, digest.hexdigest()

    def _abort(self, full: str, upload_id: str) -> None:
        # Best effort: cleanup_incomplete retries on the next run.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)

    # -- reading
    def get_stream(self, key: str) -> Iterator[bytes]:
        """Download in 1 MiB chunks, resuming with a ranged GET after a dropped connection."""
        full = self._full(key)
        with s3_errors(f"cannot read {key}"):
            resp = self.client.get_object(Bucket=self.bucket, Key=full)
        return self._chunks(key, full, resp)

    def _chunks(self, key: str, full: str, resp: Any) -> Iterator[bytes]:
        etag = resp["ETag"]
        total = int(resp["ContentLength"])
        offset = 0
        failures = 0
        body = resp["Body"]
        while True:
            try:
                for chunk in body.iter_chunks(MIB):
                    offset += len(chunk)
                    yield chunk
                if offset != total:
                    raise BackupError(f"{key}: got {offset} of {total} bytes")
                return
            except (botocore.exceptions.BotoCoreError, OSError, BackupError) as e:
                body.close()
                failures += 1
                if failures >= self.max_attempts:
                    raise translate(e, f"cannot read {key}") from e
                time.sleep(min(0.2 * 2**failures, 5.0))
                with s3_errors(f"cannot read {key}"):
                    resp = self.client.get_object(
                        Bucket=self.bucket, Key=full, Range=f"bytes={offset}-", IfMatch=etag
                    )
                body = resp["Body"]

    def get_object_stream(self, key: str) -> tuple[int, str | None, Iterator[bytes]]:
        """(size, content type, chunks) of an object; the chunks resume like ``get_stream``."""
        full = self._full(key)
        with s3_errors(f"cannot read {key}"):
            resp = self.client.get_object(Bucket=self.bucket, Key=full)
        return int(resp["ContentLength"]), resp.get("ContentType"), self._chunks(key, full, resp)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """A byte range of an object (empty past its end)."""
        if length <= 0:
            return b""
        with s3_errors(f"cannot read {key}", ok={"InvalidRange"}):
            resp = self.client.get_object(
                Bucket=self.bucket, Key=self._full(key), Range=f"bytes={start}-{start + length - 1}"
            )
            return resp["Body"].read()
        return b""

    def head(self, key: str) -> ObjectInfo | None:
        """Size of the object, or None if absent."""
        with s3_errors(f"cannot stat {key}", ok=MISSING):
            resp = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            return ObjectInfo(key, int(resp["ContentLength"]))
        return None

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Objects under the prefix, sorted by key."""
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        out = []
        with s3_errors(f"cannot list {prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    out.append(ObjectInfo(self._rel(obj["Key"]), int(obj["Size"])))
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Delete (with object lock and versioning: add a delete marker)."""
        with s3_errors(f"cannot delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete objects in batches of 1000 (DeleteObjects); return how many were asked."""
        count = 0
        it = iter(keys)
        while batch := list(itertools.islice(it, 1000)):
            # Listed keys, deleted as they are (a "folder/" marker has an empty part).
            objects = [{"Key": f"{self.prefix}/{k}" if self.prefix else k} for k in batch]
            with s3_errors(f"cannot delete {len(objects)} objects"):
                resp = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": objects, "Quiet": True},  # type: ignore[typeddict-item]
                )
            if resp.get("Errors"):
                err = resp["Errors"][0]
                raise BackupError(f"cannot delete {err.get('Key')}: {err.get('Code')}")
            count += len(objects)
        return count

    def copy(self, source: str, target: str) -> None:
        """Server-side copy in this bucket (multipart copy past 5 GiB), type and metadata kept."""
        with s3_errors(f"cannot copy {source} to {target}"):
            self.client.copy(
                {"Bucket": self.bucket, "Key": self._full(source)}, self.bucket, self._full(target)
            )

    # -- housekeeping
    def incomplete_uploads(self, prefix: str) -> builtins.list[tuple[str, str]]:
        """(key, upload id) of the multipart uploads in progress under the prefix.

        MinIO lists uploads only for an exact key or for the whole bucket (a partial
        ``Prefix`` finds nothing), so this lists the bucket's uploads and filters here.
        """
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        out = []
        with s3_errors(f"cannot list uploads under {prefix}"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
            for page in pages:
                for up in page.get("Uploads", []):
                    if up["Key"].startswith(full):
                        out.append((up["Key"], up["UploadId"]))
        return out

    def cleanup_incomplete(self, prefix: str) -> int:
        """Abort the multipart uploads left under the prefix (by killed runs)."""
        uploads = self.incomplete_uploads(prefix)
        for full, upload_id in uploads:
            with s3_errors(f"cannot abort the upload of {full}", ok={"NoSuchUpload"}):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        return len(uploads)
