"""The portal's French and English catalogs hold every message of its templates and
code, and every file the portal reads at run time ships in the package."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from osp_ops.web.i18n import LANGUAGES, negotiate, translations

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "osp_ops" / "web"
METHODS = [
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2"),
    ("**/templates/mail/**.txt", "jinja2"),
]
OPTIONS = {"**/templates/**": {"extensions": "jinja2.ext.i18n"}}


def _messages() -> set[str]:
    found = extract_from_dir(str(WEB), METHODS, options_map=OPTIONS)
    return {m if isinstance(m, str) else m[0] for _f, _l, m, _c, _x in found}


def test_every_message_is_translated_in_both_languages() -> None:
    wanted = _messages()
    assert len(wanted) > 100
    for lang in LANGUAGES:
        po = WEB / "locales" / lang / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        have = {m.id: m.string for m in catalog if m.id}
        missing = sorted(wanted - set(have))
        assert not missing, f"{lang}: not in messages.po (see docs/portal.md): {missing}"
        assert not [k for k in wanted if not have[k]], f"{lang}: empty translations"
        assert not sorted(set(have) - wanted), f"{lang}: messages no longer used"
    assert translations("fr").gettext("Sign in") == "Se connecter"


def test_language_negotiation() -> None:
    assert negotiate(None) == "fr"
    assert negotiate("en-GB,en;q=0.9,fr;q=0.8") == "en"
    assert negotiate("de-DE,fr;q=0.5,en;q=0.7") == "en"
    assert negotiate("en;q=0, fr;q=0.1") == "fr"
    assert negotiate("en", "fr") == "fr" and negotiate("fr", "xx") == "fr"
    assert negotiate("q=;;,,;q=abc,en;q=x") == "fr"


def test_run_time_files_are_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["osp_ops"]
    for path in WEB.rglob("*"):
        if path.is_dir() or path.suffix in (".py", ".pyc") or path.name == "babel.cfg":
            continue
        rel = PurePosixPath(path.relative_to(REPO / "osp_ops").as_posix())
        assert any(rel.full_match(p) if hasattr(rel, "full_match") else rel.match(p)
                   for p in patterns), f"{rel} is not shipped (pyproject package-data)"  # fmt: skip
