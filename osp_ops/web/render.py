"""Templates: one jinja2 environment per language, autoescaped HTML, strict undefined,
gettext from the compiled catalogs."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from osp_ops.web.i18n import LANGUAGE_NAMES, LANGUAGES, translations


def _environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(resources.files("osp_ops.web").joinpath("templates"))),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(lang=lang, languages=LANGUAGE_NAMES)
    return env


class Renderer:
    """Renders pages and mail in French or English."""

    def __init__(self) -> None:
        self._envs = {lang: _environment(lang) for lang in LANGUAGES}

    def render(self, lang: str, name: str, **values: Any) -> str:
        """The template ``name`` rendered in ``lang``."""
        return self._envs[lang].get_template(name).render(**values)

    def mail(self, lang: str, name: str, **values: Any) -> tuple[str, str]:
        """(subject, body) of the mail template ``name``: its first line is the subject."""
        text = self.render(lang, f"mail/{name}.txt", **values)
        subject, _, body = text.strip().partition("\n")
        return subject.strip(), body.strip() + "\n"

    def translator(self, lang: str) -> Callable[..., str]:
        """``_`` of ``lang`` for Python code (named parameters are interpolated)."""
        trans = translations(lang)

        def _(message: str, **params: Any) -> str:
            text = trans.gettext(message)
            return text % params if params else text

        return _
