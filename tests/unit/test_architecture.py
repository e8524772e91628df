"""The dependency direction of docs/ARCHITECTURE.md, checked on the source: services never import each
other, and the shared layers never import a service or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"receiver", "worker", "health_checker", "endpoint"}
SHARED = {"models", "market", "saga", "runtime"}
# What each shared package may import from the project (a lower layer only).
SHARED_ALLOWED = {
    "models": set(),
    "market": {"models"},
    "saga": {"models", "runtime"},
    "runtime": {"models"},
}
PROJECT = SERVICES | SHARED | {"paceline"}


def _imports(pkg: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / pkg).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in PROJECT and top != pkg:
                    found.add((str(path.relative_to(ROOT)), top))
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_services_never_import_each_other_or_the_cli(service: str) -> None:
    bad = {(f, t) for f, t in _imports(service) if t in SERVICES | {"paceline"}}
    assert not bad, f"{service} imports another service or the CLI: {sorted(bad)}"


@pytest.mark.parametrize("pkg", sorted(SHARED))
def test_shared_layers_only_import_lower_layers(pkg: str) -> None:
    bad = {(f, t) for f, t in _imports(pkg) if t not in SHARED_ALLOWED[pkg]}
    assert not bad, f"{pkg} imports outside its allowed layers: {sorted(bad)}"
