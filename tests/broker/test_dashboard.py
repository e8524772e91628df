"""``paceline dashboard`` in a real browser: Debian's chromium driven headless by Playwright, fed from the
real broker. Checks what the page shows, that pushes stay throttled under a burst of fills, and saves a
screenshot (``PACELINE_SCREENSHOT``, default ``~/.paceline/screenshots/dashboard.png``)."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.service import Dashboard
from models import JobRequest, KillState, OrdStatus, RiskControl, WorkerHeartbeat, topics
from paceline.ops import broker
from runtime.bus import Bus, Profile
from runtime.settings import Settings
from tests.broker.pipeline import wait_for
from tests.factories import T0, fill, parent, report, tick

pytestmark = pytest.mark.broker
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
H = 3600 * 10**9


@pytest.fixture
def dashboard(bus: Bus, pulsar: broker.BrokerConfig) -> Iterator[Dashboard]:
    dash = Dashboard(bus, pulsar.admin_url, port=0, rate_hz=4).start()
    yield dash
    dash.stop()


def _snapshot(dash: Dashboard) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{dash.port}/snapshot.json", timeout=5) as r:
        doc: dict[str, object] = json.loads(r.read())
        return doc


def test_the_page_shows_parents_workers_risk_and_broker_live(bus: Bus, dashboard: Dashboard) -> None:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: scripts/bootstrap.sh installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    tag = uuid.uuid4().hex[:6]
    pid, sym, client = f"P-{tag}", "DSH" + tag[:3].upper(), f"C{tag}"
    ticks = bus.producer(topics.ticks(sym))
    ticks.send(tick(symbol=sym, bid_px=50.00, ask_px=50.02, ts_event=T0))
    bus.producer(topics.HEARTBEATS).send(
        WorkerHeartbeat(worker_id=f"w-{tag}", incarnation="i", seq=1, capacity=50, ts_init=time.time_ns())
    )
    bus.producer(topics.RISK).send(RiskControl(client_id=client, state=KillState.HALTED, ts_init=T0))
    p = parent(parent_id=pid, cl_ord_id=f"cl-{tag}", symbol=sym, quantity=2000, end_ns=T0 + H)
    bus.producer(topics.JOB_REQUESTS).send(JobRequest(job_id=f"J{pid}", parent=p, ts_init=T0))
    wait_for(lambda: sym in dashboard.following(), 10, "the dashboard to follow the parent's symbol")
    ticks.send(tick(symbol=sym, bid_px=50.00, ask_px=50.02, ts_event=T0 + H // 2, seq=2))
    bus.producer(topics.REPORTS).send(
        report(parent_id=pid, cl_ord_id=f"cl-{tag}", symbol=sym, order_qty=2000, cum_qty=500, leaves_qty=1500,
               last_qty=500, last_px=50.03, avg_px=50.03)
    )  # fmt: skip

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 700})
        page.goto(f"http://127.0.0.1:{dashboard.port}/")
        row = page.locator(f'tr[data-parent="{pid}"]')
        row.wait_for(timeout=15_000)
        page.wait_for_function(
            f'document.querySelector(\'tr[data-parent="{pid}"] .filled\').textContent.includes("500")',
            timeout=15_000,
        )
        assert "500 / 2,000" in row.locator(".filled").inner_text()
        assert row.locator(".status").inner_text() == OrdStatus.PARTIALLY_FILLED.value
        # The running shortfall: 500 bought 2 cents above arrival, the 1,500 still to buy marked at the mid
        # now (the arrival mid again): market.costs, one definition.
        assert float(row.locator(".is").inner_text()) == pytest.approx(
            500 * (50.03 - 50.01) / (2000 * 50.01) * 1e4, abs=0.01
        )
        bar = row.locator(".bar .s").get_attribute("style") or ""
        assert "left:50%" in bar.replace(" ", "")  # half the window elapsed on the market clock
        assert f"w-{tag}" in page.locator("#workers").inner_text()
        assert "HALTED" in page.locator("#risk").inner_text()
        page.wait_for_function(
            'document.getElementById("broker").textContent.startsWith("up")', timeout=10_000
        )
        assert page.locator("#conn").inner_text() == "live"

        # A burst: 3,000 fills in about a second. The page is pushed at most 4 times a second and keeps up.
        execs = bus.producer(topics.EXECUTIONS, profile=Profile.BULK)
        pushes0, t0 = dashboard.pushes, time.monotonic()
        for i in range(3000):
            execs.send_async(fill(fill_id=f"F{tag}{i}", parent_id=pid, symbol=sym, qty=1, px=50.03), key=pid)
        execs.flush()
        wait_for(lambda: _snapshot(dashboard)["fills"]["count"] >= 3000, 20, "the burst folded in")  # type: ignore[index]
        time.sleep(1.0)
        elapsed, pushes = time.monotonic() - t0, dashboard.pushes - pushes0
        assert pushes <= 4 * elapsed + 2, (pushes, elapsed)
        page.wait_for_function(
            f'document.querySelector(\'tr[data-parent="{pid}"] td:nth-child(9)\').textContent === "3000"',
            timeout=10_000,
        )
        t_eval = time.perf_counter()
        page.evaluate("1 + 1")  # the page's main thread answers at once: it never froze
        assert time.perf_counter() - t_eval < 2.0
        # The page's own estimate, from the spacing of arrivals (which its busy main thread and the socket
        # compress after a burst): near the cap, never far above it. The cap itself is counted above.
        rate = float(page.locator("#rate").inner_text())
        assert 0 < rate <= 6.0
        shot = Path(
            os.environ.get("PACELINE_SCREENSHOT") or Settings().home / "screenshots" / "dashboard.png"
        )
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000


def test_the_pulsar_grafana_dashboard_queries_what_the_broker_exports(
    bus: Bus, pulsar: broker.BrokerConfig
) -> None:
    import re

    board = json.loads(
        (Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/pulsar.json").read_text()
    )
    used = {m for p in board["panels"] for t in p.get("targets", [])
            for m in re.findall(r"\b(?:pulsar|jvm)_[a-z_]+", t["expr"])}  # fmt: skip
    assert len(used) >= 10
    # Topic-level series exist once a topic has a producer and a subscription.
    topic = f"persistent://paceline/exec/dash-metrics-{uuid.uuid4().hex[:6]}"
    sub = bus.subscribe(topic, "dash", WorkerHeartbeat)
    bus.producer(topic).send(WorkerHeartbeat(worker_id="w", incarnation="i", seq=1, capacity=1, ts_init=T0))
    exported: set[str] = set()

    def scrape() -> bool:
        with urllib.request.urlopen(f"{pulsar.admin_url}/metrics/", timeout=30) as r:
            exported.update(line.split("{")[0].split(" ")[0] for line in r.read().decode().splitlines()
                            if line and not line.startswith("#"))  # fmt: skip
        return used <= exported

    try:
        wait_for(scrape, 90, f"the broker to export {sorted(used - exported)}")
    finally:
        sub.close()


def test_the_chart_draws_a_parent_against_the_market_and_follows_new_fills(
    bus: Bus, dashboard: Dashboard
) -> None:
    """Choose a parent: its chart shows the touch over its window, the arrival mid, our fills as marks, the
    executed curve against the schedule with the policy's band, and participation; new fills appear."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: scripts/bootstrap.sh installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    from models import JobRef, Strategy

    tag = uuid.uuid4().hex[:6]
    pid, sym, job = f"P-{tag}", "CHT" + tag[:3].upper(), f"J-{tag}"
    window = 600 * 10**9
    ticks = bus.producer(topics.ticks(sym))
    p = parent(parent_id=pid, cl_ord_id=f"cl-{tag}", symbol=sym, quantity=1000, end_ns=T0 + window,
               strategy=Strategy.RL, policy="rl-exec")  # fmt: skip
    bus.producer(topics.JOB_REQUESTS).send(JobRequest(job_id=job, parent=p, ts_init=T0))
    bus.producer(topics.HEARTBEATS).send(WorkerHeartbeat(
        worker_id=f"w-{tag}", incarnation="i", seq=1, capacity=5, ts_init=time.time_ns(),
        jobs=(JobRef(job_id=job, epoch=1, band=0.1),),
    ))  # fmt: skip
    wait_for(lambda: sym in dashboard.following(), 10, "the dashboard to follow the parent's symbol")
    s = 10**9
    for i in range(300):  # the market drifts up over half the window, with prints
        px = 50.00 + 0.001 * i
        ticks.send(tick(symbol=sym, bid_px=round(px, 2), ask_px=round(px + 0.02, 2), ts_event=T0 + i * s,
                        seq=i + 1, trade_px=round(px + 0.02, 2), trade_sz=100))  # fmt: skip
    execs = bus.producer(topics.EXECUTIONS)
    for i, (t, q) in enumerate([(20, 100), (90, 300), (160, 100)]):
        execs.send(fill(fill_id=f"F{tag}{i}", parent_id=pid, symbol=sym, qty=q, px=50.02 + 0.001 * t,
                        ts_event=T0 + t * s), key=pid)  # fmt: skip
    wait_for(lambda: len((dashboard.state.chart(pid) or {}).get("fills", [])) == 3, 15, "the fills folded in")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"http://127.0.0.1:{dashboard.port}/")
        page.locator(f'tr[data-parent="{pid}"]').click()
        page.wait_for_function(
            f'document.getElementById("chart-title").textContent.startsWith("cl-{tag}")', timeout=15_000
        )
        page.wait_for_function('document.getElementById("chart-stats").textContent.startsWith("3 fills")',
                               timeout=15_000)  # fmt: skip
        assert "500 shares" in page.locator("#chart-stats").inner_text()
        assert "band 10.0%" in page.locator("#chart-stats").inner_text()
        drawn = page.evaluate("""() => {
            const u = charts.price, p = charts.progress;
            const [t, q, px] = u._fills[1];
            const x = Math.round(u.valToPos(t, "x", true)), y = Math.round(u.valToPos(px, "y", true));
            const [r, g, b, a] = u.ctx.getImageData(x, y, 1, 1).data;  // the centre of the second fill's mark
            return {quotes: u.data[0].length, arrival: u.data[4][0], mark: [r, g, b, a],
                    executed: p.data[3].filter((v) => v !== null), band: p.data[1],
                    schedule: p.data[2], part: charts.part.data[1]};
        }""")
        assert drawn["quotes"] >= 290  # one point per second of market time: under the 600-point cap
        assert drawn["arrival"] == pytest.approx(50.01)
        r, g, b, a = drawn["mark"]
        assert b > r and b > g and a > 0, drawn["mark"]  # blue: our fill's mark, not the background
        assert max(drawn["executed"]) == pytest.approx(50.0)  # 500 of 1,000
        # The band lies 10 % of the quantity under the TWAP schedule (clipped at zero).
        gaps = [round(s - b, 6) for s, b in zip(drawn["schedule"], drawn["band"], strict=True) if s >= 10]
        assert gaps and set(gaps) == {10.0}
        # Participation: the intervals with our fills show our share of the market's prints.
        assert max(drawn["part"]) > 0

        # New fills reach the open chart without a reload.
        for i in range(3, 8):
            execs.send(fill(fill_id=f"F{tag}{i}", parent_id=pid, symbol=sym, qty=100, px=50.30,
                            ts_event=T0 + (200 + i) * s), key=pid)  # fmt: skip
        ticks.send(tick(symbol=sym, bid_px=50.30, ask_px=50.32, ts_event=T0 + 210 * s, seq=400))
        page.wait_for_function('document.getElementById("chart-stats").textContent.startsWith("8 fills")',
                               timeout=15_000)  # fmt: skip
        assert page.evaluate("charts.price._fills.length") == 8
        shot = Path(os.environ.get("PACELINE_CHART_SCREENSHOT")
                    or Settings().home / "screenshots" / "dashboard-chart.png")  # fmt: skip
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
