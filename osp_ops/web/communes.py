"""INSEE commune codes: the format, and a small bundled reference (``communes.csv``,
a few large communes) against which the municipality's name is checked when the code
is in it."""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from importlib import resources

# Two digits of département (2A/2B for Corsica; 971-976 overseas use three) and three
# of commune; 00 is no département.
INSEE_RE = re.compile(r"^(?!00)(?:\d{2}|2[AB])\d{3}$")


@functools.cache
def reference() -> dict[str, str]:
    """Code → official name, from the bundled file."""
    text = resources.files("osp_ops.web").joinpath("communes.csv").read_text("utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(io.StringIO(text))}


def normal(name: str) -> str:
    """A name without case, accents, punctuation or spacing, for comparison."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if c.isascii()))


def check(code: str, municipality: str) -> tuple[str | None, str | None]:
    """(problem, official name): the problem is ``"format"`` or ``"name"`` (the code is
    known and its commune's name is not in ``municipality``), else None."""
    if not INSEE_RE.match(code):
        return "format", None
    official = reference().get(code)
    if official is not None and normal(official) not in normal(municipality):
        return "name", official
    return None, official
