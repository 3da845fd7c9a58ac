"""Smoke test of the s3 fixture: MinIO multipart, ranges, versioning, object lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.fixtures.minio import MinioServer

pytestmark = [pytest.mark.infra, pytest.mark.integration]

MIB = 1024 * 1024


def block(j: int) -> bytes:
    """1 MiB block number j of the generated stream."""
    return hashlib.sha256(str(j).encode()).digest() * (MIB // 32)


class GeneratedStream(io.RawIOBase):
    """A non-seekable stream of n MiB produced on the fly, like a pipe."""

    def __init__(self, mib: int) -> None:
        self.mib = mib
        self.j = 0
        self.buf = b""
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self.buf and self.j < self.mib:
            self.buf = block(self.j)
            self.j += 1
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.sha.update(self.buf[:n])
        self.buf = self.buf[n:]
        return n


def test_multipart_upload_from_stream_and_ranged_get(s3: MinioServer) -> None:
    client = s3.client()
    stream = GeneratedStream(100)
    reader = io.BufferedReader(stream, buffer_size=MIB)
    with pytest.raises(OSError):
        reader.seek(0)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=16 * MIB)
    client.upload_fileobj(reader, s3.bucket, "big/stream.bin", Config=config)
    head = client.head_object(Bucket=s3.bucket, Key="big/stream.bin")
    assert head["ContentLength"] == 100 * MIB
    assert head["ETag"].strip('"').endswith("-7")  # 7 parts of 16 MiB: it was multipart

    start = 50 * MIB - 10
    got = client.get_object(
        Bucket=s3.bucket, Key="big/stream.bin", Range=f"bytes={start}-{start + 19}"
    )["Body"].read()
    assert got == block(49)[-10:] + block(50)[:10]

    body = client.get_object(Bucket=s3.bucket, Key="big/stream.bin")["Body"]
    sha = hashlib.sha256()
    for chunk in iter(lambda: body.read(4 * MIB), b""):
        sha.update(chunk)
    assert sha.hexdigest() == stream.sha.hexdigest()


def test_versioning_and_object_lock(s3: MinioServer) -> None:
    client = s3.client()
    bucket = s3.create_bucket()
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = client.get_object_lock_configuration(Bucket=bucket)
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"

    v1 = client.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = client.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    versions = client.list_object_versions(Bucket=bucket, Prefix="k")["Versions"]
    assert {v["VersionId"] for v in versions} == {v1, v2}
    assert client.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"

    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    locked = client.put_object(
        Bucket=bucket,
        Key="locked",
        Body=b"keep me",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
    )["VersionId"]
    with pytest.raises(ClientError) as err:
        client.delete_object(Bucket=bucket, Key="locked", VersionId=locked)
    # AWS says AccessDenied; MinIO says InvalidRequest "Object is WORM protected ...".
    assert err.value.response["Error"]["Code"] in {"AccessDenied", "InvalidRequest"}
    assert "WORM" in err.value.response["Error"]["Message"]
    assert client.get_object(Bucket=bucket, Key="locked", VersionId=locked)["Body"].read() == (
        b"keep me"
    )
    # An unlocked version can be deleted.
    client.delete_object(Bucket=bucket, Key="k", VersionId=v1)


def test_incomplete_multipart_upload_list_and_abort(s3: MinioServer) -> None:
    client = s3.client()
    upload = client.create_multipart_upload(Bucket=s3.bucket, Key="partial.bin")
    uid = upload["UploadId"]
    client.upload_part(
        Bucket=s3.bucket, Key="partial.bin", UploadId=uid, PartNumber=1, Body=block(0) * 5
    )
    listed = client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("partial.bin", uid)]
    parts = client.list_parts(Bucket=s3.bucket, Key="partial.bin", UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    client.abort_multipart_upload(Bucket=s3.bucket, Key="partial.bin", UploadId=uid)
    assert client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
