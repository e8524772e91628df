"""``paceline tca <ClOrdID>``: a parent's transaction-cost report, one self-contained HTML file a client can
keep (charts are inline SVG: it opens anywhere, offline, and prints).

Everything comes from the recorded topics: the parent (``job-requests``), its reports (``reports``), its
fills (``exec/executions``) and its symbol's ticks. The figures are those of the final report the client
received (``ExecutionReport.tca``: the endpoint's ``market.tca`` at the time); the report also replays the
recorded ticks and fills through a fresh ``market.tca.Tca`` — the same code — and says whether it agrees.
For an order still working (or one the endpoint could not measure) the replay's figures are shown, marked
at the latest tick.
"""

from __future__ import annotations

import html
import io
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from market.session import second_of_day
from market.tca import Tca, feed, tracked_from
from models import (
    ExecutionReport,
    Fill,
    JobRequest,
    Message,
    ParentOrder,
    TcaFigures,
    TcaRecord,
    Tick,
    topics,
)
from runtime.bus import Bus

DASH = "\u2013"
CHART_POINTS = 1500  # quotes drawn per chart (the latest of each step): the file stays small
PARTS = (
    ("delay_bps", "delay", "the mid's move from arrival to our first fill, on what filled"),
    ("spread_bps", "spread and impact", "paid over the mid at each fill"),
    ("timing_bps", "timing", "the mid's move while we traded, on what filled"),
    ("opportunity_bps", "opportunity", "what did not fill, marked at the mid at the end"),
)


class NotFoundError(LookupError):
    pass


@dataclass
class Record:
    """One parent's history off the topics."""

    parent: ParentOrder
    job_id: str
    reports: list[ExecutionReport]
    fills: list[Fill]  # first of each fill id, in event-time order
    ticks: list[Tick]  # its symbol's, in event-time order
    told: TcaFigures | None = None  # what its client's final report said (``topics.TCA``)

    @property
    def last(self) -> ExecutionReport | None:
        return self.reports[-1] if self.reports else None

    @property
    def final(self) -> ExecutionReport | None:
        return next((r for r in reversed(self.reports) if r.ord_status.terminal), None)


@dataclass
class Archive:
    """The topics a report reads, each read once however many reports are written."""

    bus: Bus
    _requests: list[JobRequest] | None = None
    _reports: list[ExecutionReport] | None = None
    _fills: dict[str, list[Fill]] | None = None
    _told: dict[str, TcaFigures] | None = None
    _ticks: dict[str, list[Tick]] = field(default_factory=dict)

    def requests(self) -> list[JobRequest]:
        if self._requests is None:
            # The topic holds cancels and amends too: read as any message (as JobRequest they would be
            # counted as undecodable), kept if a new parent.
            got = self.bus.read_all(topics.JOB_REQUESTS, Message)
            self._requests = [d.message for d in got if isinstance(d.message, JobRequest)]
        return self._requests

    def reports(self) -> list[ExecutionReport]:
        if self._reports is None:
            self._reports = [
                d.message
                for d in self.bus.read_all(topics.REPORTS, Message)
                if isinstance(d.message, ExecutionReport)
            ]
        return self._reports

    def fills(self, parent_id: str) -> list[Fill]:
        if self._fills is None:
            self._fills = {}
            seen: set[str] = set()
            for d in self.bus.read_all(topics.EXECUTIONS, Message):
                f = d.message
                if isinstance(f, Fill) and f.fill_id not in seen:
                    seen.add(f.fill_id)
                    self._fills.setdefault(f.parent_id, []).append(f)
        return sorted(self._fills.get(parent_id, []), key=lambda f: f.ts_event)

    def told(self, parent_id: str) -> TcaFigures | None:
        if self._told is None:
            records = self.bus.read_all(topics.TCA, TcaRecord)
            self._told = {d.message.parent_id: d.message.figures for d in records}
        return self._told.get(parent_id)

    def ticks(self, symbol: str) -> list[Tick]:
        if symbol not in self._ticks:
            got = [d.message for d in self.bus.read_all(topics.ticks(symbol), Tick)]
            self._ticks[symbol] = sorted(got, key=lambda t: t.ts_event)  # stable: a symbol's order kept
        return self._ticks[symbol]

    def record(self, cl_ord_id: str, client_id: str | None = None) -> Record:
        """The parent a client knows as ``cl_ord_id`` (its first ClOrdID or one it was amended to); the
        latest such if several clients used it and ``client_id`` does not say."""

        def mine(client: str) -> bool:
            return client_id is None or client == client_id

        ids = [r.parent_id for r in self.reports() if r.cl_ord_id == cl_ord_id and mine(r.client_id)]
        ids += [
            q.parent.parent_id
            for q in self.requests()
            if q.parent.cl_ord_id == cl_ord_id and mine(q.parent.client_id)
        ]
        if not ids:
            raise NotFoundError(
                f"no parent order with ClOrdID {cl_ord_id!r}"
                + (f" of client {client_id!r}" if client_id else "")
                + " on the topics"
            )
        pid = ids[-1] if len(set(ids)) == 1 else max(set(ids), key=self._last_seen)
        req = next((q for q in self.requests() if q.parent.parent_id == pid), None)
        reports = [r for r in self.reports() if r.parent_id == pid]
        if req is None:
            raise NotFoundError(f"parent {pid} has reports but no request on {topics.JOB_REQUESTS}")
        return Record(
            req.parent, req.job_id, reports, self.fills(pid), self.ticks(req.parent.symbol), self.told(pid)
        )

    def _last_seen(self, parent_id: str) -> int:
        return max((r.ts_event for r in self.reports() if r.parent_id == parent_id), default=0)


@dataclass
class Replay:
    figures: TcaFigures | None
    fill_mids: dict[str, float]  # fill id -> the mid it was costed against


def replay(rec: Record) -> Replay:
    """The recorded ticks and fills through a fresh ``Tca``, in event-time order (a tick before a fill of
    the same time: the tick made it), up to where the final report's figures were marked."""
    tca = Tca()
    final = rec.told
    p = rec.parent
    # The final figures say where the endpoint's arrival was; without them, where it would have been.
    start = final.arrival_ts if final else tracked_from(p.start_ns, p.ts_init)
    tca.track(p.parent_id, p.symbol, p.side, start)
    mids = feed(tca, rec.ticks, rec.fills, end_ns=final.end_ts if final else None)
    last = rec.last
    if last is None:
        return Replay(None, mids)
    return Replay(tca.finish(p.parent_id, last.avg_px, last.cum_qty, last.order_qty), mids)


FIGURE_KEYS = (
    "is_bps",
    "delay_bps",
    "spread_bps",
    "timing_bps",
    "opportunity_bps",
    "vwap_slippage_bps",
    "twap_slippage_bps",
)


def agreement(a: TcaFigures, b: TcaFigures) -> float:
    """The largest difference between two sets of figures, in bps."""
    da, db = a.model_dump(), b.model_dump()
    return max(abs(float(da[k] or 0.0) - float(db[k] or 0.0)) for k in FIGURE_KEYS)


# --- the HTML ---------------------------------------------------------------------------------------------
def _clock(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def _bps(v: float | None) -> str:
    return DASH if v is None else f"{v:+.2f}"


def _px(v: float | None) -> str:
    return DASH if v is None else f"{v:.4f}"


def _tone(v: float | None) -> str:
    return "cost" if (v or 0.0) > 0 else "gain"


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _sampled(ticks: list[Tick], start: int, end: int) -> list[Tick]:
    step = max(1, (end - start) // CHART_POINTS)
    out: list[Tick] = []
    for t in ticks:
        if out and (t.ts_event - start) // step == (out[-1].ts_event - start) // step:
            out[-1] = t
        else:
            out.append(t)
    return out


def _charts(rec: Record, fig_: TcaFigures | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    p = rec.parent
    start = fig_.arrival_ts if fig_ else p.start_ns
    end = fig_.end_ts if fig_ else (rec.ticks[-1].ts_event if rec.ticks else p.end_ns)
    first = bisect_right([t.ts_event for t in rec.ticks], start) - 1  # the quote prevailing at the start
    window = [t for t in rec.ticks[max(0, first) :] if t.ts_event <= end]
    window = _sampled(window, start, max(end, start + 1))

    def when(ns: int) -> float:  # the x axes: seconds of the market's day, labelled HH:MM
        return second_of_day(ns)

    short = (end - start) < 20 * 60 * 10**9  # a short window's axis needs the seconds

    def hhmm(v: float, _: object) -> str:
        return f"{int(v // 3600):02d}:{int(v % 3600 // 60):02d}" + (f":{int(v % 60):02d}" if short else "")

    clock = FuncFormatter(hhmm)

    out: list[tuple[str, str]] = []
    fig, ax = plt.subplots(figsize=(10, 4))
    if window:
        xs = [when(t.ts_event) for t in window]
        ax.step(xs, [t.bid_px for t in window], where="post", color="#2da44e", lw=0.8, label="bid")
        ax.step(xs, [t.ask_px for t in window], where="post", color="#cf222e", lw=0.8, label="ask")
        ax.step(
            xs,
            [(t.bid_px + t.ask_px) / 2 for t in window],
            where="post",
            color="#24292f",
            lw=1.0,
            label="mid",
        )
    if fig_:
        ax.axhline(
            fig_.arrival_mid, color="#bf8700", ls="--", lw=1, label=f"arrival mid {fig_.arrival_mid:.4f}"
        )
        if fig_.interval_vwap:
            ax.axhline(
                fig_.interval_vwap,
                color="#8250df",
                ls=":",
                lw=1.2,
                label=f"interval VWAP {fig_.interval_vwap:.4f}",
            )
        if fig_.twap_px:
            ax.axhline(
                fig_.twap_px, color="#0a3069", ls="-.", lw=1, label=f"TWAP at the touch {fig_.twap_px:.4f}"
            )
    if rec.fills:
        big = max(f.qty for f in rec.fills)
        ax.scatter(
            [when(f.ts_event) for f in rec.fills],
            [f.px for f in rec.fills],
            s=[12 + 220 * f.qty / big for f in rec.fills],
            color="#0969da",
            alpha=0.55,
            edgecolors="#0969da",
            label="our fills (area by quantity)",
            zorder=3,
        )
    ax.xaxis.set_major_formatter(clock)
    ax.set_ylabel("price")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    out.append(("the touch and the mid over the order's life, our fills, the arrival mid and the benchmarks",
                _svg(fig)))  # fmt: skip

    fig, ax = plt.subplots(figsize=(10, 2.8))
    span = max(1, p.end_ns - p.start_ns)
    ax.plot([when(p.start_ns), when(p.end_ns)], [0, 100], color="#bf8700", lw=1, label="TWAP schedule")
    cum, xs2, ys2 = 0, [when(start)], [0.0]
    for f in rec.fills:
        cum += f.qty
        xs2.append(when(f.ts_event))
        ys2.append(100 * cum / max(1, p.quantity))
    xs2.append(when(max(end, rec.fills[-1].ts_event if rec.fills else end)))
    ys2.append(ys2[-1])
    ax.step(xs2, ys2, where="post", color="#0969da", lw=1.6, label="executed")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of the order")
    ax.xaxis.set_major_formatter(clock)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title(
        f"window {_clock(p.start_ns)[:5]}{DASH}{_clock(p.end_ns)[:5]} ({span / 60e9:.0f} min)", fontsize=8
    )
    out.append(("executed against the schedule", _svg(fig)))

    if fig_:
        fig, ax = plt.subplots(figsize=(6, 2.8))
        names = [label for _, label, _ in PARTS] + ["shortfall"]
        vals = [getattr(fig_, k) for k, _, _ in PARTS]
        bottoms, run = [], 0.0
        for v in vals:
            bottoms.append(run if v >= 0 else run + v)
            run += v
        heights = [abs(v) for v in vals] + [abs(fig_.is_bps)]
        bottoms.append(min(0.0, fig_.is_bps))
        colors = ["#cf222e" if v > 0 else "#2da44e" for v in vals] + ["#24292f"]
        ax.bar(names, heights, bottom=bottoms, color=colors)
        for i, v in enumerate([*vals, fig_.is_bps]):
            ax.annotate(f"{v:+.2f}", (i, bottoms[i] + heights[i]), ha="center", va="bottom", fontsize=8)
        ax.axhline(0, color="#57606a", lw=0.8)
        ax.set_ylabel("bps (positive = cost)")
        ax.tick_params(axis="x", labelsize=8)
        out.append(("implementation shortfall, part by part", _svg(fig)))
    return out


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #24292f; max-width: 1080px; margin: 24px auto;
       padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 22px 0 8px; }
.dim { color: #57606a; } table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #d0d7de; text-align: left; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cost { color: #cf222e; } .gain { color: #1a7f37; }
.note { background: #f6f8fa; padding: 8px 12px; border-radius: 6px; }
figure { margin: 8px 0 16px; } figcaption { font-size: 12px; color: #57606a; }
"""


def render(rec: Record, rp: Replay) -> str:
    p = rec.parent
    last = rec.last
    figs = rec.told or rp.figures
    e = html.escape
    status = last.ord_status.value if last else "PENDING_NEW"
    head = [
        ("ClOrdID", (last.cl_ord_id if last else p.cl_ord_id)),
        ("client", p.client_id),
        ("order", f"{p.side.value} {(last.order_qty if last else p.quantity):,} {p.symbol}"),
        ("strategy", p.strategy.value + (f" ({p.policy})" if p.policy else "")),
        ("window", f"{_clock(p.start_ns)} {DASH} {_clock(p.end_ns)} (market time)"),
        ("status", status),
        ("filled", f"{(last.cum_qty if last else 0):,} at {_px(last.avg_px if last else None)}"),
        ("parent id", p.parent_id),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>TCA {e(p.cl_ord_id)} — Paceline</title><style>{_STYLE}</style></head><body>",
        f"<h1>Transaction-cost report · {e(head[0][1])}</h1>",
        f"<div class='dim'>Paceline · written {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC</div>",
        "<table id='order'>"
        + "".join(f"<tr><th>{k}</th><td>{e(str(v))}</td></tr>" for k, v in head)
        + "</table>",
    ]
    if figs is None:
        parts.append(
            "<p class='note' id='no-figures'>No figures: the order has no arrival mid yet (no tick at or "
            "after its start was recorded).</p>"
        )
    else:
        source = (
            "the final report the client received"
            if rec.told is not None
            else "marked at the latest recorded tick (the order is still working, or its final report "
            "carried none)"
        )
        notional = figs.quantity * figs.arrival_mid
        rows = [("is_bps", "implementation shortfall vs the arrival mid", figs.is_bps)]
        rows += [
            (k, f"&nbsp;&nbsp;{label} <span class='dim'>— {why}</span>", getattr(figs, k))
            for k, label, why in PARTS
        ]
        table = "".join(
            f"<tr><td>{label}</td><td class='num {_tone(v)}' data-figure='{k}'>{_bps(v)}</td>"
            f"<td class='num'>{v * notional / 1e4:+,.2f}</td></tr>"
            for k, label, v in rows
        )
        bench = [
            (
                "vwap_slippage_bps",
                "interval VWAP (the market's prints, arrival to end)",
                figs.interval_vwap,
                figs.vwap_slippage_bps,
            ),
            (
                "twap_slippage_bps",
                "TWAP at the far touch over the same time",
                figs.twap_px,
                figs.twap_slippage_bps,
            ),
        ]
        btable = "".join(
            f"<tr><td>{label}</td><td class='num'>{_px(px)}</td>"
            f"<td class='num {'cost' if (v or 0) > 0 else 'gain'}' data-figure='{k}'>{_bps(v)}</td></tr>"
            for k, label, px, v in bench
        )
        agree = ""
        if rp.figures is not None and rec.told is not None:
            gap = agreement(rp.figures, rec.told)
            agree = (
                f"<p class='dim' id='replay'>Replayed from the recorded ticks and fills through the same "
                f"code: largest difference {gap:.3f} bps"
                + (
                    " (the same figures)."
                    if gap < 0.01
                    else " — the endpoint saw the market in a different order than the topics hold it."
                )
                + "</p>"
            )
        parts += [
            "<h2>Implementation shortfall</h2>",
            f"<p class='dim'>Basis points of the order's notional at the arrival mid "
            f"({_px(figs.arrival_mid)} "
            f"at {_clock(figs.arrival_ts)}; {figs.quantity:,} shares = {notional:,.2f}); positive = cost. "
            f"Source: {source}. Mid at the first fill {_px(figs.first_fill_mid)}, "
            f"at the end {_px(figs.end_mid)} "
            f"({_clock(figs.end_ts)}).</p>",
            "<table id='figures'><tr><th></th><th class='num'>bps</th><th class='num'>currency</th></tr>"
            f"{table}"
            "</table>",
            "<h2>Against benchmarks</h2>",
            "<table id='benchmarks'><tr><th>benchmark</th><th class='num'>price</th>"
            f"<th class='num'>our average vs it, bps</th></tr>{btable}</table>",
            agree,
        ]
    for title, svg in _charts(rec, figs):
        parts.append(f"<figure class='chart'>{svg}<figcaption>{e(title)}</figcaption></figure>")
    rows_f = []
    cum = 0
    for f in rec.fills:
        cum += f.qty
        mid = rp.fill_mids.get(f.fill_id)
        vs = None if mid is None else p.side.sign * (f.px - mid) / mid * 1e4
        rows_f.append(
            f"<tr><td>{_clock(f.ts_event)}</td><td class='num'>{f.qty:,}</td><td class='num'>{f.px:.4f}"
            f"</td><td class='num'>{_px(mid)}</td><td class='num'>{_bps(vs)}</td>"
            f"<td>{f.liquidity.value}</td><td class='num'>{cum:,}</td>"
            f"<td class='dim'>{e(f.fill_id)}</td></tr>"
        )
    parts += [
        f"<h2>Fills ({len(rec.fills)})</h2>",
        "<table id='fills'><tr><th>time</th><th class='num'>qty</th><th class='num'>price</th>"
        "<th class='num'>mid then</th><th class='num'>vs mid, bps</th><th>liquidity</th>"
        "<th class='num'>cumulative</th><th>fill id</th></tr>" + "".join(rows_f) + "</table>",
        "<p class='dim'>Definitions: <code>market/costs.py</code> (one definition for the backtest, the "
        "client's final report and this page). TWAP at the far touch: what a schedule that took the ask "
        "(a buy) or the bid (a sell) evenly over the order's life would have paid, impact aside.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write(archive: Archive, cl_ord_id: str, out: Path, client_id: str | None = None) -> Path:
    """The report of one parent as ``out`` (a folder: ``<out>/tca-<ClOrdID>.html``)."""
    rec = archive.record(cl_ord_id, client_id)
    path = out / f"tca-{_safe(cl_ord_id)}.html" if out.suffix != ".html" else out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(rec, replay(rec)))
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
