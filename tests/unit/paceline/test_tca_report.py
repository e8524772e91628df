"""``paceline tca`` from the topics (an in-memory broker behind the real ``Bus``): the parent found by any of
its ClOrdIDs, the figures its client was told, a replay that agrees, and an order still working."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.tca import Tca
from models import AmendRequest, ExecType, JobRequest, Liquidity, OrdStatus, TcaRecord, topics
from paceline.reports import tca_report
from runtime import metrics
from runtime.bus import Bus, stream_of
from runtime.membus import MemoryBroker
from tests.factories import T0, fill, parent, report, tick

S = 10**9


def _day(bus: Bus, *, finished: bool) -> None:
    """A buy of 1,000 over ten minutes: ticks every second, four fills; the endpoint's view of it (its
    ``Tca`` fed as the endpoint is: a fill learnt a tick late) published as the client's record."""
    p = parent(parent_id="P-1", cl_ord_id="C-1", quantity=1000, start_ns=T0, end_ns=T0 + 600 * S)
    bus.producer(topics.JOB_REQUESTS).send(JobRequest(job_id="J1", parent=p, ts_init=T0))
    live = Tca()
    live.track("P-1", "AAPL", p.side, T0)
    ticks = bus.producer(topics.ticks("AAPL"))
    execs = bus.producer(topics.EXECUTIONS)
    fills = {
        20: (300, 100.04, Liquidity.TAKER),
        50: (200, 100.05, Liquidity.MAKER),
        90: (300, 100.10, Liquidity.TAKER),
        120: (200, 100.08, Liquidity.MAKER),
    }
    pending = []
    cum, notional = 0, 0.0
    for i in range(150):
        bid = round(100.00 + 0.001 * i, 3)
        t = tick(
            bid_px=bid,
            ask_px=round(bid + 0.02, 3),
            ts_event=T0 + i * S,
            seq=i + 1,
            trade_px=bid,
            trade_sz=100,
        )
        ticks.send(t)
        live.on_tick(t)
        for f in pending:  # the fill of the previous tick reaches the endpoint's TCA now
            live.on_fill(f)
        pending = []
        if i in fills:
            qty, px, liq = fills[i]
            f = fill(fill_id=f"F{i}", parent_id="P-1", qty=qty, px=px, ts_event=t.ts_event, liquidity=liq)
            execs.send(f)
            execs.send(f)  # a redelivery: counted once
            pending.append(f)
            cum, notional = cum + qty, notional + qty * px
            last = report(
                report_id=f"R{i}",
                cl_ord_id="C-1",
                cum_qty=cum,
                leaves_qty=1000 - cum,
                last_qty=qty,
                last_px=px,
                avg_px=notional / cum,
                ord_status=OrdStatus.FILLED if cum == 1000 else OrdStatus.PARTIALLY_FILLED,
            )
            if cum == 1000:
                last = last.model_copy(update={"leaves_qty": 0})
            bus.producer(topics.REPORTS).send(last)
    if finished:
        figures = live.finish("P-1", notional / cum, cum, 1000)
        assert figures is not None
        bus.producer(topics.TCA).send(
            TcaRecord(
                parent_id="P-1",
                client_id="CLIENT1",
                cl_ord_id="C-1",
                ord_status=OrdStatus.FILLED,
                figures=figures,
                ts_init=T0,
            )
        )


def test_the_report_shows_what_the_client_was_told_and_a_replay_agrees(tmp_path: Path) -> None:
    bus = Bus.memory(MemoryBroker())
    _day(bus, finished=True)
    archive = tca_report.Archive(bus)
    rec = archive.record("C-1")
    assert rec.told is not None and rec.final is not None and len(rec.fills) == 4
    rp = tca_report.replay(rec)
    assert rp.figures is not None and tca_report.agreement(rp.figures, rec.told) < 1e-9
    told = rec.told
    parts = told.delay_bps + told.spread_bps + told.timing_bps + told.opportunity_bps
    assert parts == pytest.approx(told.is_bps, abs=0.005) and told.filled == 1000
    # A maker fill is costed against the quote before the tick that filled it; a taker's against its own.
    assert rp.fill_mids["F50"] == pytest.approx(100.049 + 0.01) and rp.fill_mids["F20"] == pytest.approx(
        100.03
    )
    html = tca_report.render(rec, rp)
    assert f"data-figure='is_bps'>{told.is_bps:+.2f}<" in html and "the same figures" in html
    assert "the final report the client received" in html and html.count("<svg") == 3
    path = tca_report.write(archive, "C-1", tmp_path)
    assert path.name == "tca-C-1.html" and path.read_text().count("<tr><td>") >= 4 + 5
    with pytest.raises(tca_report.NotFoundError, match="no parent order with ClOrdID 'nope'"):
        archive.record("nope")
    with pytest.raises(tca_report.NotFoundError):
        archive.record("C-1", client_id="SOMEONE-ELSE")


def test_an_order_still_working_is_marked_at_the_latest_tick(tmp_path: Path) -> None:
    bus = Bus.memory(MemoryBroker())
    _day(bus, finished=False)
    # The amend as the desk publishes it: on the requests topic, which the report reads as well.
    amend = AmendRequest(
        request_id="A1", parent_id="P-1", client_id="CLIENT1", cl_ord_id="C-2", quantity=1000, ts_init=T0
    )
    bus.producer(topics.JOB_REQUESTS).send(amend)
    rejected = metrics.BUS_REJECTED.labels(stream_of(topics.JOB_REQUESTS), "wrong_type")
    before = rejected._value.get()
    bus.producer(topics.REPORTS).send(
        report(
            report_id="R-amend",
            cl_ord_id="C-2",
            exec_type=ExecType.REPLACED,
            cum_qty=1000,
            leaves_qty=0,
            avg_px=100.07,
            ord_status=OrdStatus.FILLED,
        )
    )
    archive = tca_report.Archive(bus)
    rec = archive.record("C-2")  # a ClOrdID it was amended to finds it too
    assert rec.parent.parent_id == "P-1" and rec.told is None
    assert rejected._value.get() == before  # an amend on the requests topic is not an undecodable entry
    rp = tca_report.replay(rec)
    assert rp.figures is not None and rp.figures.end_ts == T0 + 149 * S
    assert "marked at the latest recorded tick" in tca_report.render(rec, rp)
