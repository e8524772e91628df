"""``paceline dashboard``: a live web page for traders and SREs.

One process follows the topics with non-durable readers (it never holds up a subscription): parent orders
(``job-requests``), their execution reports, fills, worker heartbeats, the kill switch, and the ticks of
every symbol a live parent trades. It folds them into one snapshot: each parent's progress against its
window, fills, running implementation shortfall against the arrival mid, the worker pool, the risk state
and the broker's health. The page (``GET /``) gets the snapshot over a WebSocket (``/ws``), pushed at most
``rate_hz`` times a second and only when something changed, whatever the input rate: a burst of ten thousand
fills costs the browser one message. ``GET /snapshot.json`` serves the same for scripts.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import Counter, Gauge
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from market.tca import Tca
from models import (
    ExecutionReport,
    Fill,
    JobRequest,
    KillState,
    Message,
    RiskControl,
    Tick,
    WorkerHeartbeat,
    topics,
)
from runtime import auth
from runtime.bus import Bus
from runtime.logs import get_logger

log = get_logger("paceline.dashboard")
PUSHES = Counter("paceline_dashboard_pushes_total", "Snapshots pushed to browsers (one per client per push)")
CLIENTS = Gauge("paceline_dashboard_clients", "Browsers connected")
INPUTS = Counter("paceline_dashboard_inputs_total", "Messages folded into the snapshot", ["kind"])
BAD_INPUT = Counter("paceline_dashboard_bad_input_total", "Messages from browsers that were not JSON")
LOST_AFTER_S = 3.0  # a worker silent this long is shown as lost (the health-checker's default timeout)
CHART_POINTS = 600  # quotes kept per parent for its chart: one per 1/600 of its window (the latest of each)
CHART_FILLS = 2000  # fills kept per parent for its chart (the latest)
PART_BUCKETS = 40  # participation over the window, in this many intervals


@dataclass
class Series:
    """What a parent's chart draws, on the market's clock: the touch sampled over its window (at most
    ``CHART_POINTS``, the latest tick of each step, so the chart follows the market), its fills, and the
    market's and our volume per interval (participation)."""

    start_ns: int
    end_ns: int
    t: list[int] = field(default_factory=list)
    bid: list[float] = field(default_factory=list)
    ask: list[float] = field(default_factory=list)
    fills: deque[tuple[int, int, float, int]] = field(default_factory=lambda: deque(maxlen=CHART_FILLS))
    cum: int = 0
    market_vol: list[int] = field(default_factory=lambda: [0] * PART_BUCKETS)
    our_vol: list[int] = field(default_factory=lambda: [0] * PART_BUCKETS)

    @property
    def span(self) -> int:
        return max(1, self.end_ns - self.start_ns)

    def bucket(self, ts: int) -> int | None:
        if ts < self.start_ns or self.end_ns <= self.start_ns:
            return None
        return min(PART_BUCKETS - 1, (ts - self.start_ns) * PART_BUCKETS // self.span)

    def on_tick(self, m: Tick) -> None:
        if m.ts_event < self.start_ns:
            return
        step = self.span // CHART_POINTS or 1
        if self.t and (m.ts_event - self.start_ns) // step == (self.t[-1] - self.start_ns) // step:
            self.t[-1], self.bid[-1], self.ask[-1] = m.ts_event, m.bid_px, m.ask_px
        else:
            self.t.append(m.ts_event)
            self.bid.append(m.bid_px)
            self.ask.append(m.ask_px)
        if m.trade_sz and (b := self.bucket(m.ts_event)) is not None:
            self.market_vol[b] += m.trade_sz

    def on_fill(self, f: Fill) -> None:
        self.cum += f.qty
        self.fills.append((f.ts_event, f.qty, f.px, self.cum))
        if (b := self.bucket(f.ts_event)) is not None:
            self.our_vol[b] += f.qty


@dataclass
class ParentView:
    parent_id: str
    cl_ord_id: str
    client_id: str
    symbol: str
    side: str
    qty: int
    strategy: str
    start_ns: int
    end_ns: int
    status: str = "PENDING_NEW"
    cum_qty: int = 0
    avg_px: float = 0.0
    is_bps: float | None = None  # the final report's figure once it is closed
    fills: int = 0
    updated: float = field(default_factory=time.time)
    job_id: str | None = None
    series: Series | None = None

    @property
    def live(self) -> bool:
        return self.status not in ("FILLED", "CANCELED", "REJECTED", "EXPIRED", "DONE_FOR_DAY")


class State:
    """Everything the page shows, folded from the topics. Guarded by one lock: readers' threads write,
    the pusher reads."""

    def __init__(self, max_parents: int = 200) -> None:
        self.lock = threading.Lock()
        self.parents: dict[str, ParentView] = {}
        self.max_parents = max_parents
        self.market: dict[str, dict[str, float]] = {}  # symbol -> mid, event time (ns)
        self.workers: dict[str, dict[str, Any]] = {}
        self.risk: dict[str, str] = {"ALL": KillState.ACTIVE.value}
        self.fills_total = 0
        self.shares_total = 0
        self.recent_fills: deque[dict[str, Any]] = deque(maxlen=15)
        self.broker: dict[str, Any] = {"ok": None, "rtt_ms": None}
        self.version = 0  # bumped on every change: the pusher sends only when it moved
        self.tca = Tca()  # arrival mids and running shortfall, by the endpoint's rule
        self.bands: dict[str, float] = {}  # job id -> its policy's band around the schedule (heartbeats)
        self._fill_ids: dict[str, set[str]] = {}  # per parent: fills drawn (a redelivery is drawn once)

    def on_message(self, m: Message) -> None:
        with self.lock:
            self.version += 1
            if isinstance(m, Tick):
                self.market[m.symbol] = {"mid": (m.bid_px + m.ask_px) / 2, "t": m.ts_event}
                self.tca.on_tick(m)
                for view in self.parents.values():
                    if view.series is not None and view.symbol == m.symbol and view.live:
                        view.series.on_tick(m)
            elif isinstance(m, JobRequest):
                p = m.parent
                if p.parent_id not in self.parents:
                    self.parents[p.parent_id] = ParentView(
                        p.parent_id, p.cl_ord_id, p.client_id, p.symbol, p.side.value, p.quantity,
                        p.strategy.value, p.start_ns, p.end_ns, job_id=m.job_id,
                        series=Series(p.start_ns, p.end_ns),
                    )  # fmt: skip
                    self.tca.track(p.parent_id, p.symbol, p.side, p.start_ns)
                    self._trim()
            elif isinstance(m, ExecutionReport):
                self._report(m)
            elif isinstance(m, Fill):
                self.fills_total += 1
                self.shares_total += m.qty
                self.recent_fills.appendleft({"t": m.ts_event, "symbol": m.symbol, "side": m.side.value,
                                              "qty": m.qty, "px": m.px, "parent": m.parent_id})  # fmt: skip
                if (pv := self.parents.get(m.parent_id)) is not None:
                    pv.fills += 1
                    seen = self._fill_ids.setdefault(m.parent_id, set())
                    if pv.series is not None and m.fill_id not in seen:
                        seen.add(m.fill_id)
                        pv.series.on_fill(m)
            elif isinstance(m, WorkerHeartbeat):
                self.workers[m.worker_id] = {"seen": time.time(), "jobs": len(m.jobs), "capacity": m.capacity,
                                             "policies": len(m.policies)}  # fmt: skip
                self.bands.update({j.job_id: j.band for j in m.jobs if j.band is not None})
            elif isinstance(m, RiskControl):
                self.risk[m.client_id or "ALL"] = m.state.value
            INPUTS.labels(getattr(m, "kind", "?")).inc()

    def _report(self, r: ExecutionReport) -> None:
        pv = self.parents.get(r.parent_id)
        if pv is None:  # a report of a parent this page did not see arrive: shown from here on
            pv = self.parents[r.parent_id] = ParentView(r.parent_id, r.cl_ord_id, r.client_id, r.symbol,
                                                        r.side.value, r.order_qty, "?", 0, 0)  # fmt: skip
            self.tca.track(r.parent_id, r.symbol, r.side, 0)  # started already: its arrival is the mid now
            self._trim()
        pv.status = r.ord_status.value
        pv.cum_qty = max(pv.cum_qty, r.cum_qty)
        pv.qty = r.order_qty
        if r.avg_px:
            pv.avg_px = r.avg_px
        if r.is_bps is not None:
            pv.is_bps = r.is_bps
        if r.ord_status.terminal:
            self.tca.drop(r.parent_id)
        pv.updated = time.time()

    def _trim(self) -> None:
        if len(self.parents) > self.max_parents:
            done = sorted((p for p in self.parents.values() if not p.live), key=lambda p: p.updated)
            for p in done[: len(self.parents) - self.max_parents]:
                del self.parents[p.parent_id]
                self._fill_ids.pop(p.parent_id, None)
                if p.job_id is not None:
                    self.bands.pop(p.job_id, None)
                self.tca.drop(p.parent_id)

    def symbols(self) -> set[str]:
        with self.lock:
            return {p.symbol for p in self.parents.values() if p.live}

    def chart(self, parent_id: str) -> dict[str, Any] | None:
        """The chart of one parent (times in seconds of market time, for the page's time axes)."""
        with self.lock:
            p = self.parents.get(parent_id)
            if p is None or p.series is None:
                return None
            s = p.series
            arrival = self.tca.arrival(parent_id)
            return {
                "parent_id": p.parent_id, "cl_ord_id": p.cl_ord_id, "symbol": p.symbol, "side": p.side,
                "qty": p.qty, "strategy": p.strategy, "status": p.status, "live": p.live,
                "start": s.start_ns / 1e9, "end": s.end_ns / 1e9, "arrival_mid": arrival,
                "band": self.bands.get(p.job_id or ""),
                "now": (self.market.get(p.symbol) or {}).get("t", s.start_ns) / 1e9,
                "t": [t / 1e9 for t in s.t], "bid": list(s.bid), "ask": list(s.ask),
                "fills": [[t / 1e9, q, px, cum] for t, q, px, cum in s.fills],
                "part": {"t": [(s.start_ns + i * s.span // PART_BUCKETS) / 1e9 for i in range(PART_BUCKETS)],
                         "market": list(s.market_vol), "ours": list(s.our_vol)},
            }  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        with self.lock:
            parents = []
            for p in sorted(self.parents.values(), key=lambda p: (not p.live, -p.updated))[:60]:
                mk = self.market.get(p.symbol)
                t = mk["t"] if mk else 0
                span = p.end_ns - p.start_ns
                sched = min(1.0, max(0.0, (t - p.start_ns) / span)) if span > 0 and t else None
                # Closed: the final report's figure; while it works, the same rule as the endpoint's TCA
                # (the arrival mid of ``market.tca``) with the rest marked at the mid now.
                running = p.is_bps
                if running is None:
                    running = self.tca.running(p.parent_id, p.avg_px, p.cum_qty, p.qty)
                parents.append({
                    "parent_id": p.parent_id, "cl_ord_id": p.cl_ord_id, "client_id": p.client_id,
                    "symbol": p.symbol, "side": p.side, "qty": p.qty, "strategy": p.strategy,
                    "status": p.status, "cum_qty": p.cum_qty, "avg_px": p.avg_px, "fills": p.fills,
                    "filled": p.cum_qty / p.qty if p.qty else 0.0, "schedule": sched,
                    "is_bps": None if running is None else round(running, 2), "live": p.live,
                })  # fmt: skip
            workers = [{"worker_id": w, "age_s": round(now - v["seen"], 1), "jobs": v["jobs"],
                        "capacity": v["capacity"],
                        "state": "ok" if now - v["seen"] < LOST_AFTER_S else "lost"}
                       for w, v in sorted(self.workers.items())]  # fmt: skip
            return {
                "ts": now, "version": self.version, "parents": parents, "workers": workers,
                "market": {s: {"mid": round(v["mid"], 4), "t": v["t"]} for s, v in self.market.items()},
                "risk": dict(self.risk), "broker": dict(self.broker),
                "fills": {"count": self.fills_total, "shares": self.shares_total,
                          "recent": list(self.recent_fills)},
            }  # fmt: skip


class Dashboard:
    def __init__(self, bus: Bus, admin_url: str, *, host: str = "127.0.0.1", port: int = 8765,
                 rate_hz: float = 4.0) -> None:  # fmt: skip
        self.bus, self.admin_url, self.host, self.rate_hz = bus, admin_url, host, rate_hz
        self.state = State()
        self._port = port
        self._server: Server | None = None
        self._clients: dict[ServerConnection, str | None] = {}  # each browser's chosen parent (its chart)
        self._clients_lock = threading.Lock()
        self._stop = threading.Event()
        self._chosen = threading.Event()  # a browser chose a chart: push at the next period even if unchanged
        self._readers: list[Any] = []
        self._ticks: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []
        self.pushes = 0
        self._page = resources.files("dashboard").joinpath("page.html").read_text()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.socket.getsockname()[1]
        return port

    def start(self) -> Dashboard:
        # Recent history first (parents already running, the kill switch), then everything from now on.
        for d in self.bus.read_all(topics.RISK, RiskControl):
            self.state.on_message(d.message)
        for topic in (topics.JOB_REQUESTS, topics.REPORTS, topics.EXECUTIONS, topics.HEARTBEATS, topics.RISK):
            self._readers.append(self.bus.tail(topic, Message, lambda d: self.state.on_message(d.message)))
        self._server = serve(self._handle, self.host, self._port, process_request=self._http)
        for target in (self._server.serve_forever, self._push_loop, self._watch_loop):
            th = threading.Thread(target=target, daemon=True, name=f"dashboard-{target.__name__}")
            th.start()
            self._threads.append(th)
        log.info("dashboard started", url=f"http://{self.host}:{self.port}/")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
        for r in [*self._readers, *self._ticks.values()]:
            with contextlib.suppress(Exception):
                r.close()
        for th in self._threads[1:]:
            th.join(timeout=5)

    # --- HTTP and WebSocket ----------------------------------------------------------------------------
    def _http(self, conn: ServerConnection, req: Request) -> Response | None:
        path = req.path.split("?", 1)[0]
        if path == "/ws":
            return None  # the WebSocket handshake goes on
        if path in ("/", "/index.html"):
            return _respond(conn, HTTPStatus.OK, self._page, "text/html; charset=utf-8")
        if path == "/snapshot.json":
            return _respond(conn, HTTPStatus.OK, json.dumps(self.state.snapshot()), "application/json")
        if path == "/chart.json":
            chart = self.state.chart(parse_qs(urlsplit(req.path).query).get("parent", [""])[0])
            if chart is None:
                return _respond(conn, HTTPStatus.NOT_FOUND, "no such parent\n", "text/plain")
            return _respond(conn, HTTPStatus.OK, json.dumps(chart), "application/json")
        if path == "/vendor/uplot.js":
            return _respond(conn, HTTPStatus.OK, self._vendor("uPlot.iife.min.js"), "text/javascript")
        if path == "/vendor/uplot.css":
            return _respond(conn, HTTPStatus.OK, self._vendor("uPlot.min.css"), "text/css")
        if path == "/healthz":
            return _respond(conn, HTTPStatus.OK, "ok\n", "text/plain")
        return _respond(conn, HTTPStatus.NOT_FOUND, "not found\n", "text/plain")

    @staticmethod
    def _vendor(name: str) -> str:
        return resources.files("dashboard").joinpath("vendor", name).read_text()

    def _handle(self, conn: ServerConnection) -> None:
        with self._clients_lock:
            self._clients[conn] = None
            CLIENTS.set(len(self._clients))
        try:
            conn.send(json.dumps(self.state.snapshot()))
            for raw in conn:  # the page says which parent it charts: {"chart": parent_id or null}
                try:
                    doc = json.loads(raw)
                    chosen = doc.get("chart") if isinstance(doc, dict) else None
                except ValueError:
                    chosen = None
                    BAD_INPUT.inc()
                with self._clients_lock:
                    self._clients[conn] = chosen if isinstance(chosen, str) else None
                self._chosen.set()
        except ConnectionClosed:
            pass
        finally:
            with self._clients_lock:
                self._clients.pop(conn, None)
                CLIENTS.set(len(self._clients))

    def _push_loop(self) -> None:
        """At most ``rate_hz`` pushes a second, each only if something changed: the snapshot, with the chart
        of the parent each browser chose (built once per parent chosen)."""
        sent_version = -1
        gap = 1.0 / self.rate_hz
        while not self._stop.wait(gap):
            new_choice = self._chosen.is_set()
            self._chosen.clear()
            if self.state.version == sent_version and not new_choice:
                continue
            sent_version = self.state.version
            base = self.state.snapshot()
            with self._clients_lock:
                clients = list(self._clients.items())
            payloads: dict[str | None, str] = {None: json.dumps(base)}
            for c, pid in clients:
                if pid is not None and pid not in payloads:
                    payloads[pid] = json.dumps({**base, "chart": self.state.chart(pid)})
                with contextlib.suppress(Exception):  # a slow or gone browser never holds up the others
                    c.send(payloads[pid])
                    PUSHES.inc()
            self.pushes += 1

    def following(self) -> set[str]:
        """The symbols whose ticks the page follows."""
        return set(self._ticks)

    def _watch_loop(self) -> None:
        """Follow the ticks of the symbols live parents trade (checked 4 times a second); check the broker's
        health every 2 s."""
        n = 0
        while not self._stop.is_set():
            for sym in self.state.symbols() - self._ticks.keys():
                self._ticks[sym] = self.bus.tail(
                    topics.ticks(sym), Tick, lambda d: self.state.on_message(d.message)
                )
            if n % 8 == 0:
                self._check_broker()
            n += 1
            self._stop.wait(0.25)

    def _check_broker(self) -> None:
        t0 = time.perf_counter()
        try:
            # "ready" asks no more than an authenticated role (the live page runs as the viewer).
            url = f"{self.admin_url}/admin/v2/brokers/ready"
            req = urllib.request.Request(url, headers=auth.admin_headers())
            with urllib.request.urlopen(req, timeout=2) as r:
                ok = r.status == 200
        except Exception:
            ok = False
        with self.state.lock:
            self.state.broker = {"ok": ok, "rtt_ms": round((time.perf_counter() - t0) * 1e3, 1),
                                 "url": self.bus.service_url}  # fmt: skip
            self.state.version += 1


def _respond(conn: ServerConnection, status: HTTPStatus, body: str, ctype: str) -> Response:
    resp = conn.respond(status, body)
    del resp.headers["Content-Type"]  # respond() set text/plain; Headers would keep both
    resp.headers["Content-Type"] = ctype
    resp.headers["Cache-Control"] = "no-store"
    return resp
