"""A backup and its manifest, and ``run_backup`` which writes one.

A backup of a tenant is a set of objects under one key prefix::

    <tenant>/<YYYY>/<MM>/<DD>/<backup-id>/db.dump.zst.age     database dump (pg_dump -Fc -Z0)
                                         /files.tar.zst.age   uploaded files (tar)
                                         /spec.yaml           the tenant spec, plain text
                                         /manifest.json       written LAST

(the store's own prefix, e.g. ``s3://bucket/prefix``, comes before). A backup exists only
once its manifest exists. The backup id sorts by time: ``20261128T161500Z-1a2b3c``.

The manifest is JSON ``{"body": {...}, "body_sha256": "...", "hmac_sha256": "..."}``.
``body_sha256`` is the SHA-256 of the body's canonical JSON (sorted keys, no spaces,
UTF-8): it catches any corruption or hand edit that does not also recompute it.
``hmac_sha256`` (optional) is an HMAC-SHA-256 of the same bytes keyed with a key derived
from the tenant's age *secret* key (:func:`manifest_key`): someone who can write to the
bucket but does not hold the tenant key cannot forge it. A plain hash alone could be
recomputed by such a person, and an age recipient list gives no sender authentication
(anyone can encrypt to public keys), hence the keyed MAC. Holders of only the recovery
key cannot check the MAC; they still check the hash and every object end to end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from osp_ops import failpoints
from osp_ops.backups.pipeline import (
    ZSTD_LEVEL,
    Encoding,
    Source,
    StoredStream,
    encode_bytes,
    encode_to_store,
    parse_identities,
)
from osp_ops.domain.errors import BackupError
from osp_ops.objects.base import ObjectStore

FORMAT = "osp-ops-backup/1"
MANIFEST = "manifest.json"
SPEC = "spec.yaml"
BACKUP_ID = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]{6}$")

Reporter = Callable[[str], None]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectEntry(_Model):
    """One object of a backup."""

    name: str = Field(description="File name inside the backup's prefix.")
    role: Literal["database", "files", "spec"]
    format: str = Field(description="pg_dump-custom, pg_dump-plain, tar or yaml.")
    size: int = Field(ge=0, description="Stored bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the stored bytes.")
    plain_size: int = Field(ge=0, description="Bytes before compression and encryption.")
    plain_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    compression: Literal["zstd", "none"]
    encrypted: bool
    seconds: float = Field(ge=0)


class ManifestBody(_Model):
    """Everything known about a backup."""

    format: Literal["osp-ops-backup/1"] = "osp-ops-backup/1"
    tenant: str
    backup_id: str
    started_at: datetime
    completed_at: datetime
    app_version: str
    schema_version: str | None = None
    postgres_version: str | None = None
    pg_dump_version: str | None = None
    row_counts: dict[str, int] = Field(default_factory=dict)
    objects: tuple[ObjectEntry, ...]
    compression: dict[str, Any] = Field(default_factory=dict)
    encryption: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)

    def object(self, role: str) -> ObjectEntry | None:
        """The object with this role, if any."""
        return next((o for o in self.objects if o.role == role), None)


class Manifest(_Model):
    """The manifest file: the body and its own checksum (and MAC)."""

    body: ManifestBody
    body_sha256: str
    hmac_sha256: str | None = None

    @property
    def backup_id(self) -> str:
        """The backup id."""
        return self.body.backup_id

    @property
    def tenant(self) -> str:
        """The tenant slug."""
        return self.body.tenant


def canonical(body: ManifestBody) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTF-8."""
    data = body.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_key(tenant_identity: str) -> bytes:
    """The MAC key of a tenant's manifests, derived from its age secret key (HKDF-SHA256)."""
    idents = parse_identities([tenant_identity])
    if len(idents) != 1:
        raise BackupError("manifest_key needs exactly one age secret key")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"osp-ops backup manifest v1"
    ).derive(str(idents[0]).encode())


def seal(body: ManifestBody, mac_key: bytes | None = None) -> Manifest:
    """The manifest for a body, with its checksum (and MAC when a key is given)."""
    raw = canonical(body)
    mac = hmac.new(mac_key, raw, hashlib.sha256).hexdigest() if mac_key else None
    return Manifest(body=body, body_sha256=hashlib.sha256(raw).hexdigest(), hmac_sha256=mac)


def parse_manifest(data: bytes, *, mac_key: bytes | None = None) -> Manifest:
    """Parse and check a manifest; BackupError if malformed, edited or its MAC is wrong."""
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as e:
        raise BackupError(f"manifest is malformed: {e.error_count()} problem(s)") from e
    raw = canonical(manifest.body)
    if not hmac.compare_digest(hashlib.sha256(raw).hexdigest(), manifest.body_sha256):
        raise BackupError("manifest checksum mismatch: the manifest was corrupted or edited")
    if mac_key is not None:
        if manifest.hmac_sha256 is None:
            raise BackupError("manifest carries no MAC but one was required")
        expected = hmac.new(mac_key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, manifest.hmac_sha256):
            raise BackupError("manifest MAC mismatch: not written with this tenant's key")
    return manifest


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest file's text (indented for people; the checksum ignores formatting)."""
    return (manifest.model_dump_json(indent=2) + "\n").encode()


def new_backup_id(now: datetime | None = None) -> str:
    """A backup id sortable by time: ``YYYYMMDDTHHMMSSZ-<6 hex>``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def backup_time(backup_id: str) -> datetime:
    """The UTC time encoded in a backup id."""
    m = BACKUP_ID.match(backup_id)
    if not m:
        raise BackupError(f"{backup_id!r} is not a backup id")
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def backup_prefix(tenant: str, backup_id: str) -> str:
    """``<tenant>/<YYYY>/<MM>/<DD>/<backup-id>`` (no trailing slash)."""
    t = backup_time(backup_id)
    return f"{tenant}/{t:%Y}/{t:%m}/{t:%d}/{backup_id}"


def _entry(
    stored: StoredStream,
    *,
    role: Literal["database", "files", "spec"],
    fmt: str,
    encoding: Encoding | None,
) -> ObjectEntry:
    return ObjectEntry(
        name=stored.key.rsplit("/", 1)[1],
        role=role,
        format=fmt,
        size=stored.size,
        sha256=stored.sha256,
        plain_size=stored.plain_size,
        plain_sha256=stored.plain_sha256,
        compression="zstd" if encoding else "none",
        encrypted=bool(encoding and encoding.recipients),
        seconds=round(stored.seconds, 3),
    )


def run_backup(
    *,
    source: Source,
    files: Source | None,
    store: ObjectStore,
    tenant: str,
    spec_yaml: str,
    recipients: Sequence[str],
    app_version: str,
    row_counts: Mapping[str, int] | Callable[[], Mapping[str, int]],
    schema_version: str | None = None,
    versions: Mapping[str, str] | None = None,
    mac_key: bytes | None = None,
    zstd_level: int = ZSTD_LEVEL,
    now: datetime | None = None,
    reporter: Reporter | None = None,
) -> Manifest:
    """Back up one tenant: dump, files, spec, then the manifest (last).

    ``recipients`` are age public keys (the tenant's own and the ops recovery key); an
    empty list stores unencrypted ``.zst`` objects (for ``backup.encrypt: false``).
    ``versions`` may name ``server`` and ``pg_dump``; the source's own are used otherwise.
    ``row_counts`` may be a callable, asked when the objects are stored (counts taken
    beside the dump).
    Before starting, leftovers of interrupted runs of this tenant (temp files, S3
    multipart uploads) are cleaned. If anything fails no manifest is written, so the
    backup does not exist; its stray objects are listed as incomplete and cleaned later.
    """
    report = reporter or (lambda _msg: None)
    started = (now or datetime.now(UTC)).astimezone(UTC)
    backup_id = new_backup_id(started)
    prefix = backup_prefix(tenant, backup_id)
    encoding = Encoding(recipients=tuple(recipients), zstd_level=zstd_level)
    t0 = time.monotonic()
    cleaned = store.cleanup_incomplete(f"{tenant}/")
    if cleaned:
        report(f"removed {cleaned} leftover(s) of interrupted backups")
    timings: dict[str, float] = {}
    objects = []

    report(f"dumping the database to {prefix}/db.dump{encoding.suffix}")
    db = encode_to_store(
        source=source, store=store, key=f"{prefix}/db.dump{encoding.suffix}", encoding=encoding
    )
    timings["database"] = round(db.seconds, 3)
    objects.append(_entry(db, role="database", fmt=source.kind, encoding=encoding))
    if files is not None:
        report(f"archiving files to {prefix}/files.tar{encoding.suffix}")
        fs = encode_to_store(
            source=files, store=store, key=f"{prefix}/files.tar{encoding.suffix}", encoding=encoding
        )
        timings["files"] = round(fs.seconds, 3)
        objects.append(_entry(fs, role="files", fmt=files.kind, encoding=encoding))
    spec = encode_bytes(data=spec_yaml.encode(), store=store, key=f"{prefix}/{SPEC}")
    objects.append(_entry(spec, role="spec", fmt="yaml", encoding=None))
    failpoints.hit("backup:after-objects")

    src_versions = dict(getattr(source, "versions", {}) or {})
    src_versions.update(versions or {})
    timings["total"] = round(time.monotonic() - t0, 3)
    body = ManifestBody(
        tenant=tenant,
        backup_id=backup_id,
        started_at=started,
        completed_at=datetime.now(UTC),
        app_version=app_version,
        schema_version=schema_version,
        postgres_version=src_versions.get("server"),
        pg_dump_version=src_versions.get("pg_dump"),
        row_counts=dict(row_counts() if callable(row_counts) else row_counts),
        objects=tuple(objects),
        compression={"algorithm": "zstd", "level": zstd_level},
        encryption=(
            {"format": "age-v1", "recipient_type": "X25519", "recipients": list(recipients)}
            if recipients
            else {}
        ),
        timings=timings,
    )
    manifest = seal(body, mac_key)
    store.put_stream(f"{prefix}/{MANIFEST}", [manifest_bytes(manifest)])
    report(f"backup {backup_id} complete ({sum(o.size for o in objects)} bytes stored)")
    return manifest
