"""A PEP 517 build backend of a few lines for this test package: a pure-Python wheel of
``osp_tinyapp/`` whose metadata and entry points come from ``pyproject.toml``.

The tests install the package offline with ``pip install --no-build-isolation``; the
project's virtualenv has setuptools but not ``wheel``, which setuptools needs to build.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "osp_tinyapp"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]


def _dist_info(project: dict) -> dict[str, str]:
    metadata = (
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
        f"Summary: {project['description']}\nRequires-Python: {project['requires-python']}\n"
    )
    wheel = (
        "Wheel-Version: 1.0\nGenerator: tinyapp_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    groups = project.get("entry-points", {})
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()
    )
    return {"METADATA": metadata, "WHEEL": wheel, "entry_points.txt": entry_points}


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 517: write the wheel into ``wheel_directory``; return its file name."""
    project = _project()
    dist = project["name"].replace("-", "_")
    info = f"{dist}-{project['version']}.dist-info"
    files = [
        (p.relative_to(ROOT).as_posix(), p.read_bytes())
        for p in sorted((ROOT / PACKAGE).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    files += [(f"{info}/{n}", t.encode()) for n, t in _dist_info(project).items()]
    record = "".join(f"{n},sha256={_digest(d)},{len(d)}\n" for n, d in files)
    record += f"{info}/RECORD,,\n"
    name = f"{dist}-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            z.writestr(n, d)
        z.writestr(f"{info}/RECORD", record)
    return name
