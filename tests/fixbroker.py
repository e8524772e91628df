"""A small broker for tests: a QuickFIX acceptor that fills market orders at once (in two executions) and
fills half of a limit order, leaving the rest open until it is cancelled."""

from __future__ import annotations

import gc
import itertools
import threading
from pathlib import Path
from typing import Any

import quickfix as fix

from fixclient import fields
from models.fix import Tag


class FixBroker(fix.Application):  # type: ignore[misc]
    def __init__(self, state_dir: Path, port: int, px: float = 100.0) -> None:
        super().__init__()
        self.settings_port = port
        self.px = px
        self.orders: dict[str, dict[int, str]] = {}  # ClOrdID -> the NewOrderSingle
        self.leaves: dict[str, int] = {}
        self.cum: dict[str, int] = {}
        self.new_orders: list[str] = []
        self.cancels: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        cfg = state_dir / "broker.cfg"
        cfg.write_text("\n".join([
            "[DEFAULT]", "ConnectionType=acceptor", f"SocketAcceptPort={port}", "SocketReuseAddress=Y",
            f"FileStorePath={state_dir / 'store'}", "StartTime=00:00:00", "EndTime=00:00:00",
            "UseDataDictionary=N", "", "[SESSION]", "BeginString=FIX.4.4", "SenderCompID=BROKER",
            "TargetCompID=PACELINE", "",
        ]))  # fmt: skip
        settings = fix.SessionSettings(str(cfg))
        self._acc: Any = fix.ThreadedSocketAcceptor(self, fix.FileStoreFactory(settings), settings)

    def start(self) -> FixBroker:
        self._acc.start()
        return self

    def stop(self) -> None:
        if self._acc is not None:
            self._acc.stop()
            self._acc = None
            gc.collect()

    def onCreate(self, sid: Any) -> None:  # noqa: N802
        pass

    def onLogon(self, sid: Any) -> None:  # noqa: N802
        pass

    def onLogout(self, sid: Any) -> None:  # noqa: N802
        pass

    def toAdmin(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def fromAdmin(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def toApp(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def fromApp(self, m: Any, sid: Any) -> None:  # noqa: N802
        f = fields(m)
        with self._lock:
            if f[Tag.MSG_TYPE] == "D":
                self._new(f, sid)
            elif f[Tag.MSG_TYPE] == "F":
                self._cancel(f, sid)

    def _er(
        self, sid: Any, cl: str, exec_type: str, status: str, *, last: int = 0, orig: str | None = None
    ) -> None:
        o = self.orders[orig or cl]
        out = fix.Message()
        out.getHeader().setField(Tag.MSG_TYPE, "8")
        key = orig or cl
        for tag, value in ((Tag.ORDER_ID, f"B-{key}"), (Tag.CL_ORD_ID, cl),
                           (Tag.EXEC_ID, f"E{next(self._ids)}"), (Tag.EXEC_TYPE, exec_type),
                           (Tag.ORD_STATUS, status), (Tag.SYMBOL, o[Tag.SYMBOL]),
                           (Tag.SIDE, o[Tag.SIDE]), (Tag.ORDER_QTY, o[Tag.ORDER_QTY]),
                           (Tag.CUM_QTY, str(self.cum[key])), (Tag.LEAVES_QTY, str(self.leaves[key])),
                           (Tag.AVG_PX, f"{self.px:.4f}"), (Tag.LAST_QTY, str(last)),
                           (Tag.LAST_PX, f"{self.px:.4f}")):  # fmt: skip
            out.setField(tag, value)
        if orig:
            out.setField(Tag.ORIG_CL_ORD_ID, orig)
        fix.Session.sendToTarget(out, sid)

    def _new(self, f: dict[int, str], sid: Any) -> None:
        cl = f[Tag.CL_ORD_ID]
        if cl in self.orders:
            return
        qty = int(float(f[Tag.ORDER_QTY]))
        self.orders[cl], self.leaves[cl], self.cum[cl] = f, qty, 0
        self.new_orders.append(cl)
        self._er(sid, cl, "0", "0")
        fill = qty if f[Tag.ORD_TYPE] == "1" else qty // 2
        for part in (fill // 2, fill - fill // 2):
            if part:
                self.leaves[cl] -= part
                self.cum[cl] += part
                self._er(sid, cl, "F", "2" if self.leaves[cl] == 0 else "1", last=part)

    def _cancel(self, f: dict[int, str], sid: Any) -> None:
        orig = f[Tag.ORIG_CL_ORD_ID]
        self.cancels.append(orig)
        if orig not in self.orders or self.leaves[orig] == 0:
            rej = fix.Message()
            rej.getHeader().setField(Tag.MSG_TYPE, "9")
            for tag, value in (
                (Tag.ORDER_ID, f"B-{orig}"),
                (Tag.CL_ORD_ID, f[Tag.CL_ORD_ID]),
                (Tag.ORIG_CL_ORD_ID, orig),
                (Tag.ORD_STATUS, "2"),
                (Tag.CXL_REJ_RESPONSE_TO, "1"),
            ):
                rej.setField(tag, value)
            fix.Session.sendToTarget(rej, sid)
            return
        self.leaves[orig] = 0
        self._er(sid, f[Tag.CL_ORD_ID], "4", "4", orig=orig)
