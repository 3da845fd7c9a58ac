"""The request form: its fields, strict validation with one message per field, and the
tenant spec an approved request becomes.

Messages are English gettext message ids (marked with ``N_`` for extraction) with
named parameters; the pages translate them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError

from osp_ops.domain.catalog import Catalog
from osp_ops.domain.plans import PlanName
from osp_ops.domain.spec import SLUG_MAX, Slug
from osp_ops.settings import Settings
from osp_ops.web import communes

# The languages an instance may offer, by their own names (the form's checkboxes).
LOCALE_NAMES = {
    "fr": "Français",
    "en": "English",
    "de": "Deutsch",
    "it": "Italiano",
    "es": "Español",
}
LOCALES = tuple(LOCALE_NAMES)
ADDRESS_KINDS = ("subdomain", "domain")
FIELDS = (
    "municipality",
    "insee",
    "address_kind",
    "subdomain",
    "domain",
    "contact_name",
    "contact_role",
    "contact_email",
    "contact_phone",
    "app",
    "plan",
    "locales",
    "consent",
    "consent_version",
)
MAX_TEXT = 200

_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)
_SLUG: TypeAdapter[str] = TypeAdapter(Slug)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,25}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PREFIXES = ("ville de ", "mairie de ", "commune de ", "ville d'", "mairie d'", "commune d'")


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a message for extraction; translated where it is shown."""
    return message


@dataclass(frozen=True)
class Message:
    """A gettext message id and its named parameters."""

    text: str
    params: dict[str, str] = field(default_factory=dict)
    raw: bool = False  # shown as it is (escaped, not translated): a spec's own message


Errors = dict[str, list[Message]]


def slugify(name: str) -> str:
    """A tenant slug from a municipality's name ("Ville de Saint-Denis" → saint-denis)."""
    low = name.strip().casefold()
    for prefix in _PREFIXES:
        if low.startswith(prefix):
            low = low[len(prefix) :]
            break
    ascii_ = "".join(c for c in unicodedata.normalize("NFKD", low) if c.isascii())
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-")[:SLUG_MAX].strip("-")
    return slug if slug[:1].isalpha() else f"v-{slug}"[:SLUG_MAX].strip("-")


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def validate(
    raw: Mapping[str, Any], *, settings: Settings, catalog: Catalog, consent_version: str
) -> tuple[dict[str, Any], Errors]:
    """Check every field at once: (clean data, errors by field). ``raw`` maps field names
    to strings (``locales`` to a list of strings)."""
    errors: Errors = {}
    clean: dict[str, Any] = {}

    def bad(key: str, text: str, /, **params: str) -> None:
        errors.setdefault(key, []).append(Message(text, params))

    for name in ("municipality", "contact_name", "contact_role"):
        value = _text(raw, name)
        if not value:
            bad(name, N_("This field is required."))
        elif len(value) > MAX_TEXT or _CONTROL.search(value):
            bad(name, N_("Use at most %(n)s characters, on one line."), n=str(MAX_TEXT))
        clean[name] = value

    insee = _text(raw, "insee").upper()
    clean["insee"] = insee
    problem, official = communes.check(insee, clean["municipality"])
    if problem == "format":
        bad("insee", N_("An INSEE code has five characters, e.g. 92050 or 2A004."))
    elif problem == "name" and official:
        bad("insee", N_("Code %(code)s is the commune of %(name)s."), code=insee, name=official)
    clean["commune"] = official

    kind = _text(raw, "address_kind") or "subdomain"
    if kind not in ADDRESS_KINDS:
        bad("address_kind", N_("Choose one of the options."))
        kind = "subdomain"
    clean["address_kind"] = kind
    sub, domain = _text(raw, "subdomain").lower(), _text(raw, "domain").lower().rstrip(".")
    base = settings.base_domain
    if kind == "subdomain":
        slug = sub
        if not sub:
            bad("subdomain", N_("This field is required."))
        elif not _LABEL.match(sub) or len(sub) > SLUG_MAX or not sub[0].isalpha():
            bad(
                "subdomain",
                N_(
                    "Use lowercase letters, digits and dashes (at most 30), starting with a letter."
                ),
            )
        else:
            _check_slug(sub, settings, lambda t: bad("subdomain", t))
        host = f"{sub}.{base}"
    else:
        slug = slugify(official or clean["municipality"] or "x")
        labels = domain.split(".")
        if not domain:
            bad("domain", N_("This field is required."))
        elif len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
            bad("domain", N_("Enter a domain name such as participer.ville-exemple.fr."))
        elif domain == base or domain.endswith("." + base):
            bad("domain", N_("For an address under %(base)s, choose the first option."), base=base)
        else:
            _check_slug(slug, settings, lambda t: bad("municipality", t))
        host = domain
    clean.update(subdomain=sub, domain=domain, slug=slug, host=host)

    email = _text(raw, "contact_email")
    try:
        email = _EMAIL.validate_python(email) if email else ""
    except ValidationError:
        bad("contact_email", N_("Enter an email address such as name@ville-exemple.fr."))
    if not email and "contact_email" not in errors:
        bad("contact_email", N_("This field is required."))
    clean["contact_email"] = email.lower() if "contact_email" not in errors else email

    phone = _text(raw, "contact_phone")
    if not phone:
        bad("contact_phone", N_("This field is required."))
    elif not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 6:
        bad(
            "contact_phone", N_("Enter a phone number such as 01 23 45 67 89 or +33 1 23 45 67 89.")
        )
    clean["contact_phone"] = phone

    app = _text(raw, "app")
    if app not in catalog.apps:
        bad("app", N_("Choose one of the options."))
    clean["app"] = app
    plan = _text(raw, "plan")
    if plan not in {p.value for p in PlanName}:
        bad("plan", N_("Choose one of the options."))
    clean["plan"] = plan

    chosen = raw.get("locales", [])
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    locales = [loc for loc in LOCALES if loc in chosen]
    if not locales or len(locales) != len(set(chosen)):
        bad("locales", N_("Choose at least one of the languages offered."))
    clean["locales"] = locales

    if _text(raw, "consent") != "yes":
        bad("consent", N_("Your consent is needed to process the request."))
    if _text(raw, "consent_version") != consent_version:
        bad("consent", N_("The consent text has changed; please read it again."))
    clean["consent_version"] = consent_version
    return clean, errors


def _check_slug(slug: str, settings: Settings, bad: Any) -> None:
    try:
        _SLUG.validate_python(slug)
    except ValidationError:
        bad(N_("This name is reserved; choose another one."))
        return
    if settings.reserved_problems(slug):
        bad(N_("This name is reserved; choose another one."))


def spec_data(data: Mapping[str, Any], *, settings: Settings, catalog: Catalog) -> dict[str, Any]:
    """The tenant spec (as data, for ``validate_spec``) that a request's form becomes."""
    app = catalog.app(data["app"])
    locales = list(data["locales"]) or ["fr"]
    return {
        "slug": data["slug"],
        "name": data["municipality"],
        "app": {"name": data["app"], "version": app.latest.version},
        "hosts": {"primary": data["host"]},
        "admin": {"name": data["contact_name"], "email": data["contact_email"]},
        "contacts": [
            {"name": data["contact_name"], "email": data["contact_email"], "role": "administrative"}
        ],
        "locales": {"default": "fr" if "fr" in locales else locales[0], "available": locales},
        "plan": data["plan"],
        "platform": {"kind": settings.default_platform},
        "labels": {"origin": "portal", "insee": data["insee"]},
    }
