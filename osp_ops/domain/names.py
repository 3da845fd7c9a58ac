"""Every name a tenant gets, derived from its slug in one place, and the names no tenant
may take because osp-ops or its platforms own them (pure).

``tenant_names(slug)`` is the only place these names are derived: the database and role
``osp_<slug>`` (dashes as underscores), the namespace ``osp-<slug>``, the bucket
``<prefix><slug>``, the Unix user ``osp-<slug>``, the directory ``<srv dir>/<slug>``,
the supervised process ``osp-ops-app-<slug>``, the container ``osp-ops-<slug>``.
The playbooks receive them as ``osp_tenant.names``.

``reserved_problems(slug, owned)`` says why a slug cannot be a tenant: one of its names
is one osp-ops or the platform owns (``OWNED`` plus what the settings name: the state
database, the backup bucket). Spec validation runs it, so nothing is created.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

DB_PREFIX = "osp_"
NAMESPACE_PREFIX = "osp-"
USER_PREFIX = "osp-"
SERVICE_PREFIX = "osp-ops-app-"
CONTAINER_PREFIX = "osp-ops-"
DEFAULT_BUCKET_PREFIX = "osp-"
_USER_MAX = 32  # useradd's limit


@dataclass(frozen=True)
class TenantNames:
    """The names of one tenant's resources."""

    slug: str
    database: str
    role: str
    namespace: str
    unix_user: str
    directory: str
    service: str
    container: str

    def bucket(self, prefix: str = DEFAULT_BUCKET_PREFIX) -> str:
        """The tenant's upload bucket (``app_s3_bucket_prefix`` + slug)."""
        return f"{prefix}{self.slug}"


def _unix_user(slug: str) -> str:
    name = f"{USER_PREFIX}{slug}"
    if len(name) <= _USER_MAX:
        return name
    digest = hashlib.sha256(slug.encode()).hexdigest()[:6]
    return f"{name[: _USER_MAX - 7]}-{digest}"


def tenant_names(slug: str) -> TenantNames:
    """Every name tenant ``slug`` gets."""
    db = DB_PREFIX + slug.replace("-", "_")
    return TenantNames(
        slug=slug,
        database=db,
        role=db,
        namespace=f"{NAMESPACE_PREFIX}{slug}",
        unix_user=_unix_user(slug),
        directory=slug,
        service=f"{SERVICE_PREFIX}{slug}",
        container=f"{CONTAINER_PREFIX}{slug}",
    )


def db_name_for(slug: str) -> str:
    """Role and database name of a tenant: ``osp_<slug>``, dashes as underscores."""
    return tenant_names(slug).database


def ownership_mark(slug: str, tenant_id: str | None) -> str:
    """What osp-ops writes on a database role or namespace it creates for a tenant."""
    return f"osp-ops tenant {slug}" + (f" {tenant_id}" if tenant_id else "")


@dataclass(frozen=True)
class Owned:
    """Names osp-ops or the platforms own; a tenant whose names hit one is refused."""

    databases: frozenset[str] = frozenset({"postgres", "template0", "template1", "osp_ops"})
    database_prefixes: tuple[str, ...] = ("pg_",)
    namespaces: frozenset[str] = frozenset({"default", "osp-ops-system"})
    namespace_prefixes: tuple[str, ...] = ("kube-", "openshift-")
    buckets: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset(
        {"root", "postgres", "www-data", "nobody", "daemon", "osp-ops", "nginx", "redis"}
    )
    # Shared directories beside the tenants' own under the host's srv dir.
    directories: frozenset[str] = frozenset({"venvs", "shared", "tenants"})
    # osp-ops' own names start with osp-ops / osp_ops: the slug ``ops`` and ``ops-*``
    # would give a tenant the operator's namespace, state database or bucket names.
    slug_prefixes: tuple[str, ...] = ("ops-",)
    slugs: frozenset[str] = frozenset({"ops"})

    def with_databases(self, *names: str) -> Owned:
        """These plus more database names (the state DB of the settings ...)."""
        return replace(self, databases=self.databases | {n for n in names if n})

    def with_buckets(self, *names: str) -> Owned:
        """These plus more bucket names (the backup bucket)."""
        return replace(self, buckets=self.buckets | {n for n in names if n})


OWNED = Owned()


def reserved_problems(
    slug: str, owned: Owned = OWNED, *, bucket_prefix: str = DEFAULT_BUCKET_PREFIX
) -> list[str]:
    """Why ``slug`` cannot name a tenant: one line, or nothing when it can."""
    n = tenant_names(slug)
    hits: list[str] = []
    if slug in owned.slugs or slug.startswith(owned.slug_prefixes):
        hits.append("the prefix 'ops' (osp-ops' own names)")
    if n.database in owned.databases or n.database.startswith(owned.database_prefixes):
        hits.append(f"database {n.database!r}")
    if n.namespace in owned.namespaces or n.namespace.startswith(owned.namespace_prefixes):
        hits.append(f"namespace {n.namespace!r}")
    if n.bucket(bucket_prefix) in owned.buckets:
        hits.append(f"bucket {n.bucket(bucket_prefix)!r} (the backups')")
    if n.unix_user in owned.users:
        hits.append(f"Unix user {n.unix_user!r}")
    if n.directory in owned.directories:
        hits.append(f"directory {n.directory!r} (shared by the tenants of a host)")
    if not hits:
        return []
    return [
        f"{slug!r} is reserved: it would take {', '.join(hits)}, owned by osp-ops or the platform"
    ]
