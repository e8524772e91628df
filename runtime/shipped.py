"""The folders the project ships beside its code (``policies/``, ``deploy/``), found the same way from a
checkout and from an installed wheel.

In a checkout they sit at the repository root, next to the packages. A wheel has no repository root:
``setup.py`` copies them into the ``paceline`` package as ``paceline/_shipped/<name>``, read back through
``importlib.resources`` (a wheel installs as plain files, so the result is a real folder)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

NAMES = ("policies", "deploy")


def shipped(name: str) -> Path:
    """The shipped folder ``name``: the checkout's if there is one, else the installed package's."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not a shipped folder ({', '.join(NAMES)})")
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_dir():
        return checkout
    installed = Path(str(resources.files("paceline") / "_shipped" / name))
    if not installed.is_dir():
        raise FileNotFoundError(f"{name}/ is neither in a checkout nor installed with the package")
    return installed
