"""French and English: gettext catalogs (``locales/<lang>/LC_MESSAGES/messages.po``)
compiled in memory with Babel when first used, so an install needs no build step and a
catalog can never be older than its ``.po``; the language from a switcher or
Accept-Language."""

from __future__ import annotations

import functools
import io
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


@functools.cache
def translations(lang: str) -> Translations:
    """The compiled catalog of ``lang`` (one of ``LANGUAGES``)."""
    po = resources.files("osp_ops.web").joinpath(f"locales/{lang}/LC_MESSAGES/messages.po")
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The page language: ``chosen`` (switcher) when supported, else the best match of
    the Accept-Language header, else French."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, i, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE
