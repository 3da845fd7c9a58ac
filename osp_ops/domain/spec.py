"""The tenant spec: one YAML file per municipality, reviewed in git.

Parsing is pure: callers hand in the text and where it came from; every problem is
reported at once as a SpecError naming the file and the field path.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import time
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from osp_ops.domain import strict_yaml
from osp_ops.domain.catalog import PLATFORM_APP_KINDS, Catalog, default_catalog
from osp_ops.domain.errors import Problem, SpecError
from osp_ops.domain.names import reserved_problems
from osp_ops.domain.plans import PlanName

SLUG_MAX = 30
_SLUG = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_HOSTNAME_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2}|-[a-z]{2})?$")
_CRON_FIELD = re.compile(r"^[\d*/,\-a-zA-Z]+$")


def _check_slug(value: str) -> str:
    if len(value) > SLUG_MAX:
        raise ValueError(f"must be at most {SLUG_MAX} characters")
    if not _SLUG.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    reserved = reserved_problems(value)
    if reserved:
        raise ValueError("; ".join(reserved))
    return value


def _check_hostname(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 253 or "." not in value:
        raise ValueError(f"{value!r} is not a fully qualified host name")
    for label in value.split("."):
        if not _HOSTNAME_LABEL.match(label):
            raise ValueError(f"{value!r} is not a valid host name (label {label!r})")
    return value


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)")
    return value


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{value!r} is not a 5-field cron expression")
    return value


_timezone_cache: set[str] = set()


def _timezones() -> set[str]:
    if not _timezone_cache:
        _timezone_cache.update(available_timezones())
    return _timezone_cache


Slug = Annotated[str, AfterValidator(_check_slug)]
Hostname = Annotated[str, AfterValidator(_check_hostname)]
TimeZone = Annotated[str, AfterValidator(_check_timezone)]
Cron = Annotated[str, AfterValidator(_check_cron)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppRef(_Spec):
    """Which app and version the municipality runs."""

    # Checked against the app catalog (one entry per installed app profile), not a fixed list.
    name: str = Field(
        description="The participation app: a name of the app catalog (an installed app profile).",
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
    )
    version: str = Field(description="A version listed in the app catalog.")


class Hosts(_Spec):
    """Host names the instance answers on."""

    primary: Hostname = Field(description="The main host name; the instance URL uses it.")
    aliases: tuple[Hostname, ...] = Field(
        default=(), description="Additional host names, redirected or served alike."
    )

    @model_validator(mode="after")
    def _distinct(self) -> Hosts:
        names = (self.primary, *self.aliases)
        dupes = sorted({h for h in names if names.count(h) > 1})
        if dupes:
            raise ValueError(f"host names listed twice: {', '.join(map(repr, dupes))}")
        return self

    @property
    def all(self) -> tuple[str, ...]:
        """Primary first, then aliases."""
        return (self.primary, *self.aliases)


class Locales(_Spec):
    """Languages of the instance."""

    default: str = Field("fr", description="Default locale, e.g. fr.")
    available: tuple[str, ...] = Field(("fr",), description="Locales offered to participants.")

    @field_validator("default")
    @classmethod
    def _default_ok(cls, v: str) -> str:
        if not _LOCALE.match(v):
            raise ValueError(f"{v!r} is not a locale code like fr or pt-BR")
        return v

    @field_validator("available")
    @classmethod
    def _available_ok(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if not _LOCALE.match(x)]
        if bad:
            raise ValueError(f"not locale codes: {', '.join(map(repr, bad))}")
        if not v:
            raise ValueError("at least one locale is needed")
        return v

    @model_validator(mode="after")
    def _default_available(self) -> Locales:
        if self.default not in self.available:
            raise ValueError(f"default locale {self.default!r} is not in available")
        return self


class Person(_Spec):
    """A named person with an email address."""

    name: str = Field(min_length=1, max_length=120)
    email: EmailStr


class Contact(Person):
    """Someone to call about this instance."""

    role: Literal["technical", "administrative", "dpo", "elected"] = "technical"


class Registration(StrEnum):
    """Who may create an account."""

    open = "open"
    invitation = "invitation"
    closed = "closed"


class HostsPlatform(_Spec):
    """Run on VMs or bare metal through Ansible."""

    kind: Literal["hosts"] = "hosts"
    target: str = Field(
        "localhost", description="Inventory host or group the tenant runs on.", min_length=1
    )


class KubernetesPlatform(_Spec):
    """Run in a namespace of a Kubernetes cluster."""

    kind: Literal["kubernetes"] = "kubernetes"
    context: str | None = Field(None, description="kubeconfig context; the current one if unset.")


class Retention(_Spec):
    """Grandfather-father-son counts: how many backups of each age to keep."""

    daily: int = Field(7, ge=0, le=366)
    weekly: int = Field(4, ge=0, le=260)
    monthly: int = Field(12, ge=0, le=240)
    yearly: int = Field(2, ge=0, le=50)

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if self.daily + self.weekly + self.monthly + self.yearly == 0:
            raise ValueError("retention keeps no backup at all")
        return self


class BackupPolicy(_Spec):
    """When backups run, how long they are kept, whether they are encrypted."""

    schedule: Cron = Field("0 2 * * *", description="Cron schedule, in the tenant's time zone.")
    retention: Retention = Retention()
    encrypt: bool = Field(True, description="Encrypt with age (tenant key + ops recovery key).")


class Weekday(StrEnum):
    """Days of the week."""

    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"


class MaintenanceWindow(_Spec):
    """When disruptive work (upgrades) may run, in the tenant's time zone."""

    days: tuple[Weekday, ...] = (Weekday.sun,)
    start: time = time(3, 0)
    duration_minutes: int = Field(120, ge=15, le=24 * 60)


class TenantSpec(_Spec):
    """Everything osp-ops needs to run one municipality's instance."""

    slug: Slug = Field(
        description="DNS-1123 label naming the tenant everywhere. Slugs whose derived "
        "names osp-ops or the platform own are refused: `ops`, `ops-*`, `venvs` and those "
        "naming the state database or the backup bucket."
    )
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    app: AppRef
    hosts: Hosts
    locales: Locales = Locales()
    time_zone: TimeZone = "Europe/Paris"
    admin: Person = Field(description="The organization's first administrator.")
    registration: Registration = Registration.open
    plan: PlanName = PlanName.small
    platform: Annotated[HostsPlatform | KubernetesPlatform, Field(discriminator="kind")] = (
        HostsPlatform()
    )
    backup: BackupPolicy = BackupPolicy()
    maintenance_window: MaintenanceWindow = MaintenanceWindow()
    contacts: tuple[Contact, ...] = ()
    region: str = Field("eu-west", description="Data residency region.", min_length=2)
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels.")

    @field_validator("labels")
    @classmethod
    def _labels_ok(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not re.match(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$", k)]
        if bad:
            raise ValueError(f"invalid label keys: {', '.join(map(repr, bad))}")
        return v


def _location(loc: Iterable[int | str]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _problems(error: ValidationError, source: str) -> list[Problem]:
    out = []
    for err in error.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function"))]
        # Pydantic inserts the union tag ("hosts"/"kubernetes") under platform: drop it.
        if len(loc) >= 2 and loc[0] == "platform" and loc[1] in ("hosts", "kubernetes"):
            loc = [loc[0], *loc[2:]]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling)"
        out.append(Problem(f"{source}: {_location(loc)}".rstrip(": "), msg))
    return out


def _check_app(name: str, version: str, catalog: Catalog, source: str) -> list[Problem]:
    app = catalog.apps.get(name)
    if app is None:
        known = ", ".join(sorted(catalog.apps))
        return [Problem(f"{source}: app.name", f"unknown app {name!r} (known: {known})")]
    if version not in {v.version for v in app.versions}:
        known = ", ".join(v.version for v in app.versions)
        return [
            Problem(
                f"{source}: app.version",
                f"{name} {version!r} is not in the catalog (known: {known})",
            )
        ]
    return []


def check_catalog(spec: TenantSpec, catalog: Catalog, source: str) -> list[Problem]:
    """Problems of the spec against the app catalog: an unknown version, or an app its
    platform cannot run (OpenSlides on Kubernetes)."""
    problems = _check_app(spec.app.name, spec.app.version, catalog, source)
    app = catalog.apps.get(spec.app.name)
    runs = PLATFORM_APP_KINDS.get(spec.platform.kind, frozenset())
    if app is not None and app.kind not in runs:
        able = sorted(k for k, kinds in PLATFORM_APP_KINDS.items() if app.kind in kinds)
        fits = sorted(n for n, a in catalog.apps.items() if a.kind in runs)
        problems.append(
            Problem(
                f"{source}: platform.kind",
                f"{app.display_name} is a {app.kind} app, which platform "
                f"{spec.platform.kind!r} cannot run: use platform {' or '.join(able)}"
                + (f", or app {' or '.join(fits)} on {spec.platform.kind}" if fits else ""),
            )
        )
    return problems


def validate_spec(
    data: Mapping[str, Any], *, source: str = "<spec>", catalog: Catalog | None = None
) -> TenantSpec:
    """Validate a spec mapping; SpecError lists every problem with its field path."""
    catalog = catalog or default_catalog()
    try:
        spec = TenantSpec.model_validate(data)
    except ValidationError as e:
        problems = _problems(e, source)
        # Report an unknown version too when other fields are wrong: every problem at once.
        app = data.get("app")
        if (
            isinstance(app, Mapping)
            and isinstance(app.get("name"), str)
            and isinstance(app.get("version"), str)
            and not any(p.location.startswith(f"{source}: app") for p in problems)
        ):
            problems += _check_app(app["name"], app["version"], catalog, source)
        raise SpecError(problems) from None
    problems = check_catalog(spec, catalog, source)
    if problems:
        raise SpecError(problems)
    return spec


def parse_spec(
    text: str,
    *,
    source: str = "<spec>",
    expected_slug: str | None = None,
    catalog: Catalog | None = None,
) -> TenantSpec:
    """Parse YAML text into a TenantSpec.

    ``expected_slug`` (the file's base name) must equal the spec's slug.
    """
    try:
        data = strict_yaml.load(text)
    except strict_yaml.DuplicateKeyError as e:
        raise SpecError([Problem(f"{source}: {e.path}", str(e))]) from None
    except yaml.YAMLError as e:
        raise SpecError([Problem(source, f"not valid YAML: {e}")]) from None
    if not isinstance(data, dict):
        raise SpecError([Problem(source, "must be a YAML mapping")])
    problems: list[Problem] = []
    spec: TenantSpec | None = None
    try:
        spec = validate_spec(data, source=source, catalog=catalog)
    except SpecError as e:
        problems.extend(e.problems)
    slug = data.get("slug")
    if expected_slug is not None and isinstance(slug, str) and slug != expected_slug:
        problems.append(
            Problem(f"{source}: slug", f"{slug!r} does not match the file name {expected_slug!r}")
        )
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def dump_spec(spec: TenantSpec, *, keep: Collection[str] = ()) -> str:
    """YAML text of a spec, without the fields left at their defaults (but the top-level
    fields in ``keep``: the defaults `tenant create` chose, shown in the file it writes)."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    full = spec.model_dump(mode="json")
    data.update({k: full[k] for k in keep if k in full})
    if "platform" in data:
        # The union's tag must stay even at its default value, or the file does not parse.
        data["platform"] = {"kind": spec.platform.kind, **data["platform"]}
    # Keep the identifying fields first, in the order a reviewer reads them.
    order = ["slug", "name", "app", "hosts", "admin", "platform", "plan"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)


def check_fleet(specs: Mapping[str, TenantSpec]) -> list[Problem]:
    """Problems across tenants: two tenants claiming one slug or one host name.

    ``specs`` maps a source (file path) to its spec.
    """
    problems: list[Problem] = []
    slugs: dict[str, str] = {}
    hosts: dict[str, str] = {}
    for source, spec in specs.items():
        if spec.slug in slugs:
            problems.append(
                Problem(f"{source}: slug", f"{spec.slug!r} is also used by {slugs[spec.slug]}")
            )
        slugs.setdefault(spec.slug, source)
        for host in spec.hosts.all:
            if host in hosts and hosts[host] != source:
                problems.append(
                    Problem(f"{source}: hosts", f"host {host!r} is also used by {hosts[host]}")
                )
            hosts.setdefault(host, source)
    return problems
