"""The dependency direction of docs/ARCHITECTURE.md, checked on the source: services (the live page among
them) never import each other, the client library or the tooling; the client library speaks only the wire
contract; the shared layers never import a service or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"receiver", "worker", "health_checker", "endpoint", "dashboard"}
CLIENTS = {"fixclient"}  # libraries for clients of the product: the wire contract only
SHARED = {"models", "market", "saga", "runtime"}
# What each shared package may import from the project (a lower layer only).
SHARED_ALLOWED = {
    "models": set(),
    "market": {"models"},
    "saga": {"models", "runtime"},
    "runtime": {"models"},
}
PROJECT = SERVICES | SHARED | CLIENTS | {"paceline"}


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
    bad = {(f, t) for f, t in _imports(service) if t in SERVICES | CLIENTS | {"paceline"}}
    assert not bad, f"{service} imports another service, a client library or the CLI: {sorted(bad)}"


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_libraries_speak_only_the_wire_contract(client: str) -> None:
    bad = {(f, t) for f, t in _imports(client) if t != "models"}
    assert not bad, f"{client} imports beyond models: {sorted(bad)}"


def test_the_tooling_package_holds_no_service() -> None:
    """``paceline/`` is the command line and the operations tooling: the live page and the FIX client have
    packages of their own."""
    assert (
        not (ROOT / "paceline" / "dashboard.py").exists()
        and not (ROOT / "paceline" / "fixclient.py").exists()
    )
    assert (ROOT / "dashboard" / "service.py").exists() and (ROOT / "fixclient" / "client.py").exists()


@pytest.mark.parametrize("pkg", sorted(SHARED))
def test_shared_layers_only_import_lower_layers(pkg: str) -> None:
    bad = {(f, t) for f, t in _imports(pkg) if t not in SHARED_ALLOWED[pkg]}
    assert not bad, f"{pkg} imports outside its allowed layers: {sorted(bad)}"
