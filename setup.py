"""Everything is in pyproject.toml; this only ships ``policies/`` and ``deploy/`` (the default policy files,
the endpoint's configuration, the broker's Maven project) inside the ``paceline`` package of a wheel, where
``runtime.shipped`` finds them when there is no checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithShipped(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout itself
            return
        for name in ("policies", "deploy"):
            target = Path(self.build_lib) / "paceline" / "_shipped" / name
            shutil.rmtree(target, ignore_errors=True)
            skip = shutil.ignore_patterns("__pycache__", "*.pyc", "target")  # target: Maven's build output
            shutil.copytree(ROOT / name, target, ignore=skip)


setup(cmdclass={"build_py": BuildWithShipped})
