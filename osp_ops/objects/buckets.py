"""S3 bucket administration, apart from the backup store's object I/O.

- buckets: :func:`bucket_exists`, :func:`ensure_bucket`, :func:`delete_bucket` (with
  every object and pending upload in it);
- lifecycle rules: :func:`ensure_lifecycle` makes S3 abort the multipart uploads a
  killed run left under a store's prefix; :func:`lifecycle_rules` reads them;
- the Kubernetes tenants' buckets (``settings.app_storage = "s3"``):
  :func:`tenant_credentials` and :func:`tenant_store`, one bucket per tenant named by
  ``domain/storage.py``.

Every call goes through the store's client and :func:`~osp_ops.objects.s3.s3_errors`,
so errors are translated as for the store. Importing this module imports boto3: import
it where a bucket is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osp_ops.domain.storage import tenant_bucket
from osp_ops.objects.s3 import S3Store, s3_errors

if TYPE_CHECKING:
    from osp_ops.settings import Settings

LIFECYCLE_RULE_ID = "osp-ops-abort-incomplete-multipart"
_NO_BUCKET = frozenset({"404", "NoSuchBucket", "NotFound"})


def bucket_exists(store: S3Store) -> bool:
    """Whether the store's bucket exists (HeadBucket)."""
    with s3_errors(f"cannot check bucket {store.bucket}", ok=_NO_BUCKET):
        store.client.head_bucket(Bucket=store.bucket)
        return True
    return False


def ensure_bucket(store: S3Store) -> bool:
    """Create the store's bucket unless it exists (and is ours); True if it was created."""
    if bucket_exists(store):
        return False
    with s3_errors(f"cannot create bucket {store.bucket}", ok={"BucketAlreadyOwnedByYou"}):
        store.client.create_bucket(Bucket=store.bucket)
    return True


def delete_bucket(store: S3Store) -> bool:
    """Delete every object, the pending uploads and the bucket; False if it was gone."""
    if not bucket_exists(store):
        return False
    store.cleanup_incomplete("")
    store.delete_many(o.key for o in store.list(""))
    with s3_errors(f"cannot delete bucket {store.bucket}"):
        store.client.delete_bucket(Bucket=store.bucket)
    return True


def lifecycle_rule(prefix: str, days: int = 1) -> dict[str, Any]:
    """The lifecycle rule that aborts multipart uploads under ``prefix`` after ``days``."""
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": f"{prefix.strip('/')}/" if prefix.strip("/") else ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }


def ensure_lifecycle(store: S3Store, *, days: int = 1) -> bool:
    """Make the bucket abort incomplete multipart uploads under the store's prefix after ``days``.

    Adds (or replaces) the rule ``osp-ops-abort-incomplete-multipart`` and keeps the
    bucket's other lifecycle rules; needs ``s3:PutLifecycleConfiguration``. Returns
    False, changing nothing, on a server that rejects the rule: MinIO does (it
    expires stale uploads itself, after ``api stale_uploads_expiry``, 24 h by
    default). Either way every backup run aborts the tenant's leftover uploads.
    """
    rule = lifecycle_rule(store.prefix, days)
    with s3_errors(
        "cannot set the bucket lifecycle rule", ok={"InvalidArgument", "NotImplemented"}
    ):
        kept = [r for r in lifecycle_rules(store) if r.get("ID") != LIFECYCLE_RULE_ID]
        store.client.put_bucket_lifecycle_configuration(
            Bucket=store.bucket,
            LifecycleConfiguration={"Rules": [*kept, rule]},  # type: ignore[list-item]
        )
        return True
    return False


def lifecycle_rules(store: S3Store) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules (for checks and tests)."""
    with s3_errors("cannot read the bucket lifecycle", ok={"NoSuchLifecycleConfiguration"}):
        resp = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)
        return [dict(r) for r in resp["Rules"]]
    return []


def tenant_credentials(settings: Settings) -> dict[str, str]:
    """The access key pair of the tenants' buckets, as ``S3Store`` takes it."""
    key, secret = settings.app_s3_keys()
    return {"access_key": key, "secret_key": secret}


def tenant_store(settings: Settings, slug: str) -> S3Store:
    """Tenant ``slug``'s bucket as an ``S3Store`` (no prefix: the app writes at its root)."""
    return S3Store(
        bucket=tenant_bucket(settings.app_s3_bucket_prefix, slug),
        endpoint_url=settings.app_s3_endpoint_url,
        region=settings.app_s3_region,
        credentials=tenant_credentials(settings),
    )
