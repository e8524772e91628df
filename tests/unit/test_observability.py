"""docs/OBSERVABILITY.md, the code's metrics and the Grafana dashboards stay in step."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("runtime.metrics", "runtime.heap", "receiver.metrics", "receiver.service", "worker.service",
           "health_checker.service", "health_checker.coordinator", "saga.orchestrator", "endpoint.service",
           "endpoint.fix_gateway", "endpoint.native", "endpoint.desk", "dashboard.service")  # fmt: skip


def _registered() -> dict[str, str]:
    """Every paceline metric in the code: exposition base name -> type."""
    for m in MODULES:
        importlib.import_module(m)
    out = {}
    for c in REGISTRY.collect():
        if c.name.startswith("paceline_"):
            out[c.name + ("_total" if c.type == "counter" else "")] = c.type
    return out


def _base(name: str) -> str:
    for s in ("_bucket", "_count", "_sum"):
        if name.endswith(s):
            return name.removesuffix(s)
    return name


def test_the_inventory_documents_every_metric_and_only_real_ones() -> None:
    doc = (ROOT / "docs/OBSERVABILITY.md").read_text()
    rows = dict(re.findall(r"^\| `(paceline_[a-z_]+)` \| (counter|gauge|histogram) \|", doc, re.M))
    registered = _registered()
    assert set(rows) == set(registered), set(rows) ^ set(registered)
    assert rows == registered


def test_latency_histograms_have_sub_millisecond_buckets() -> None:
    from runtime.metrics import LATENCY_BUCKETS

    assert LATENCY_BUCKETS[0] < 1e-4 and sum(b < 1e-3 for b in LATENCY_BUCKETS) >= 4
    for name in ("paceline_endpoint_tick_to_child_seconds", "paceline_worker_tick_to_action_seconds",
                 "paceline_bus_publish_latency_seconds", "paceline_bus_consume_lag_seconds",
                 "paceline_hc_decision_seconds"):  # fmt: skip
        _registered()
        metric = next(c for c in REGISTRY.collect() if c.name == name)
        assert metric.type == "histogram"
        collector = REGISTRY._names_to_collectors[name]  # type: ignore[attr-defined]
        assert getattr(collector, "_upper_bounds", [0])[0] <= 1e-4, name


def test_grafana_dashboards_query_metrics_that_exist() -> None:
    registered = {_base(n) for n in _registered()} | set(_registered())
    board = json.loads((ROOT / "deploy/grafana/dashboards/paceline.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {_base(m) for e in exprs for m in re.findall(r"paceline_[a-z_]+", e)}
    assert used <= registered, used - registered
    for board_file in ("paceline.json", "pulsar.json"):
        doc = json.loads((ROOT / "deploy/grafana/dashboards" / board_file).read_text())
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)) and doc["uid"] and doc["title"]
        assert all(
            t["datasource"]["uid"] == "prometheus" for p in doc["panels"] for t in p.get("targets", [])
        )
