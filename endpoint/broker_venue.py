"""Routing child orders to an outside broker over FIX instead of the simulated exchange.

``BrokerVenue`` keeps every promise of ``Venue`` (idempotency per child id, epoch fencing, the
over-execution cap, fill ids ``<child id>.<n>``) but the matching happens at the broker: a NEW goes out as a
NewOrderSingle (ClOrdID = child id), a cancel as an OrderCancelRequest, and the broker's execution reports
come back through ``on_broker``. Cancels are confirmed only when the broker says so, so a FENCE or CLOSE is
acknowledged to the saga once every cancel it asked for is confirmed (or the order filled meanwhile):
only then is the job's filled quantity final.

``FixBrokerLink`` is the QuickFIX initiator that speaks to the broker (FIX 4.4).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import quickfix as fix

from market.fills import Execution
from market.prices import to_units
from market.venue import Venue, VenueJob, VenueOrder
from models import (
    AckStatus,
    ChildOrderAction,
    Message,
    OrdType,
    Tick,
    VenueCommand,
    VenueCommandAck,
    now_ns,
)
from models.fix import ORD_TYPE_OUT, SIDE_OUT, Tag, send, utc
from runtime.logs import get_logger

log = get_logger("paceline.endpoint.broker")


class BrokerLink(Protocol):
    def send_new(self, a: ChildOrderAction, qty: int) -> None: ...

    def send_cancel(self, a: ChildOrderAction) -> None: ...


@dataclass
class _Fence:
    cmd: VenueCommand
    waiting: set[str]
    canceled: list[str]


class BrokerVenue(Venue):
    def __init__(self, link: BrokerLink) -> None:
        super().__init__()
        self.link = link
        self.fences: dict[str, _Fence] = {}
        self.canceling: set[str] = set()
        self.broker_exec_ids: set[str] = set()

    # --- orders out -------------------------------------------------------------------------------------
    def _place(self, job: VenueJob, order: VenueOrder, tick: Tick) -> list[Message]:
        self.link.send_new(order.action, order.leaves)
        return []  # the broker's New (or Rejected) answers it

    def _replace(self, job: VenueJob, order: VenueOrder, a: ChildOrderAction) -> list[Message]:
        return [self._reject(a, "unsupported", "replace is not routed to the broker; cancel and send anew")]

    def _cancel(self, job: VenueJob, order: VenueOrder, reason: str | None) -> list[Message]:
        child = order.action.child_id
        if child not in self.canceling:
            self.canceling.add(child)
            self.link.send_cancel(order.action)
        return []  # confirmed by the broker

    def on_tick(self, tick: Tick) -> list[Message]:
        self.last[tick.symbol] = tick  # the broker matches; we only keep the reference price
        return []

    def command(self, cmd: VenueCommand) -> list[Message]:
        out = super().command(cmd)
        ack = out.pop()
        assert isinstance(ack, VenueCommandAck)
        waiting = {c for c in ack.canceled if c in self.canceling}
        if not waiting:
            return [*out, ack]
        self.fences[cmd.job_id] = _Fence(cmd, waiting, list(ack.canceled))
        return out  # acknowledged when the broker has confirmed every cancel

    # --- reports in --------------------------------------------------------------------------------------
    def on_broker(self, child_id: str, kind: str, *, exec_id: str = "", qty: int = 0, px: float = 0.0,
                  text: str = "") -> list[Message]:  # fmt: skip
        """One broker execution report: ``kind`` is new, trade, canceled, rejected."""
        order = self.orders.get(child_id)
        if order is None or (exec_id and exec_id in self.broker_exec_ids):
            return []  # not ours, or a resend of a report already taken into account
        if exec_id:
            self.broker_exec_ids.add(exec_id)
        job = self.jobs[order.action.job_id]
        ts = self.last[job.symbol].ts_event if job.symbol in self.last else now_ns()
        out: list[Message] = []
        if kind == "new":
            out.append(self._ack(order, AckStatus.ACCEPTED, ts))
        elif kind == "trade" and qty > 0:
            fill_qty = min(qty, order.leaves)
            out.append(
                self._fill(job, order, Execution(child_id, to_units(px), fill_qty, aggressive=True), ts)
            )
            if order.leaves == 0:
                out.append(self._ack(order, AckStatus.DONE, ts))
        elif kind in ("canceled", "rejected"):
            order.leaves = 0
            job.open.discard(child_id)
            status = AckStatus.CANCELED if kind == "canceled" else AckStatus.REJECTED
            out.append(self._ack(order, status, ts, text or f"broker {kind}"))
        if order.leaves == 0:
            self.canceling.discard(child_id)
            out += self._settle(job, child_id)
        return out

    def _settle(self, job: VenueJob, child_id: str) -> list[Message]:
        fence = self.fences.get(job.job_id)
        if fence is None:
            return []
        fence.waiting.discard(child_id)
        if fence.waiting:
            return []
        del self.fences[job.job_id]
        self._forget(job)
        return [VenueCommandAck(
            command_id=fence.cmd.command_id, op=fence.cmd.op, job_id=job.job_id, parent_id=job.parent_id,
            epoch=job.min_epoch, filled=job.filled, canceled=tuple(fence.canceled), ts_init=now_ns(),
        )]  # fmt: skip


class FixBrokerLink(fix.Application):  # type: ignore[misc]
    """QuickFIX initiator to the broker. ``on_report(child_id, kind, exec_id=, qty=, px=, text=)`` is called
    on QuickFIX's thread for each execution report."""

    def __init__(self, state_dir: Path, *, host: str, port: int, sender: str, target: str,
                 on_report: Callable[..., None]) -> None:  # fmt: skip
        super().__init__()
        self.on_report = on_report
        self.logged_on = threading.Event()
        state_dir.mkdir(parents=True, exist_ok=True)
        cfg = state_dir / "broker-initiator.cfg"
        cfg.write_text("\n".join([
            "[DEFAULT]", "ConnectionType=initiator", f"SocketConnectHost={host}", f"SocketConnectPort={port}",
            f"FileStorePath={state_dir / 'broker-store'}", "StartTime=00:00:00", "EndTime=00:00:00",
            "HeartBtInt=30", "ReconnectInterval=1", "UseDataDictionary=N", "SocketNodelay=Y", "",
            "[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={sender}", f"TargetCompID={target}", "",
        ]))  # fmt: skip
        settings = fix.SessionSettings(str(cfg))
        self.session_id = fix.SessionID("FIX.4.4", sender, target)
        self._init: Any = fix.SocketInitiator(self, fix.FileStoreFactory(settings), settings)

    def start(self, timeout_s: float = 20) -> None:
        self._init.start()
        deadline = time.monotonic() + timeout_s
        while not self.logged_on.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.logged_on.is_set():
            log.warning("broker session not logged on yet; orders wait in the FIX store until it is")

    def stop(self) -> None:
        if self._init is not None:
            self._init.stop()
            self._init = None

    # QuickFIX callbacks
    def onCreate(self, sid: Any) -> None:  # noqa: N802
        pass

    def onLogon(self, sid: Any) -> None:  # noqa: N802
        self.logged_on.set()
        log.info("broker session logged on", session=sid.toString())

    def onLogout(self, sid: Any) -> None:  # noqa: N802
        self.logged_on.clear()

    def toAdmin(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def fromAdmin(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def toApp(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def fromApp(self, m: Any, sid: Any) -> None:  # noqa: N802
        if m.getHeader().getField(Tag.MSG_TYPE) != "8":
            return
        exec_type = m.getField(Tag.EXEC_TYPE)
        cl = m.getField(Tag.CL_ORD_ID)
        child = m.getField(Tag.ORIG_CL_ORD_ID) if m.isSetField(Tag.ORIG_CL_ORD_ID) else cl
        child = child.removesuffix(".c")
        kind = {"0": "new", "F": "trade", "4": "canceled", "8": "rejected", "C": "canceled"}.get(exec_type)
        if kind is None:
            return
        qty = int(float(m.getField(Tag.LAST_QTY))) if kind == "trade" else 0
        px = float(m.getField(Tag.LAST_PX)) if kind == "trade" else 0.0
        self.on_report(child, kind, exec_id=m.getField(Tag.EXEC_ID), qty=qty, px=px,
                       text=m.getField(Tag.TEXT) if m.isSetField(Tag.TEXT) else "")  # fmt: skip

    # orders out
    def send_new(self, a: ChildOrderAction, qty: int) -> None:
        limit = a.limit_px if a.ord_type is OrdType.LIMIT else None
        send(self.session_id, "D", [
            (Tag.CL_ORD_ID, a.child_id), (Tag.SYMBOL, a.symbol), (Tag.SIDE, SIDE_OUT[a.side]),
            (Tag.ORDER_QTY, str(qty)), (Tag.ORD_TYPE, ORD_TYPE_OUT[a.ord_type]), (Tag.TIME_IN_FORCE, "0"),
            (Tag.TRANSACT_TIME, utc(now_ns())), (Tag.PRICE, None if limit is None else f"{limit:.4f}"),
        ])  # fmt: skip

    def send_cancel(self, a: ChildOrderAction) -> None:
        send(self.session_id, "F", [
            (Tag.CL_ORD_ID, f"{a.child_id}.c"), (Tag.ORIG_CL_ORD_ID, a.child_id), (Tag.SYMBOL, a.symbol),
            (Tag.SIDE, SIDE_OUT[a.side]), (Tag.ORDER_QTY, str(a.quantity)),
            (Tag.TRANSACT_TIME, utc(now_ns())),
        ])  # fmt: skip
