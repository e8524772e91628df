"""A QuickFIX initiator acting as an institutional client: used by ``paceline bench fix``, the demo and the
tests."""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import queue
import threading
import time
from pathlib import Path
from typing import Any

import quickfix as fix

from models.fix import SOH, Tag, dictionary, message, utc


def fields(m: Any) -> dict[int, str]:
    """The message's fields as tag -> value (header and body)."""
    out: dict[int, str] = {}
    for part in m.toString().split(SOH):
        if "=" in part:
            tag, _, value = part.partition("=")
            out[int(tag)] = value
    return out


class FixClient(fix.Application):  # type: ignore[misc]
    """A QuickFIX initiator acting as an institutional client. Received application messages are kept
    in order (as tag dicts) and handed to waiters."""

    def __init__(
        self, state_dir: Path, port: int, comp_id: str = "CLIENT1", target: str = "PACELINE", *,
        username: str | None = None, password: str | None = None,
    ) -> None:  # fmt: skip
        """``username``/``password``: sent on Logon (553/554) when the endpoint asks for them."""
        super().__init__()
        self.username, self.password = username, password
        self.received: list[dict[int, str]] = []
        self.admin: list[dict[int, str]] = []
        self.logged_on = threading.Event()
        self.sent_at: dict[str, float] = {}
        self.first_reply_at: dict[str, float] = {}
        self._q: queue.Queue[dict[int, str]] = queue.Queue()
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        cfg = state_dir / "initiator.cfg"
        cfg.write_text("\n".join([
            "[DEFAULT]", "ConnectionType=initiator", "SocketConnectHost=127.0.0.1",
            f"SocketConnectPort={port}",
            f"FileStorePath={state_dir / 'store'}", "StartTime=00:00:00", "EndTime=00:00:00", "HeartBtInt=30",
            "ReconnectInterval=1", "UseDataDictionary=Y", f"DataDictionary={dictionary(state_dir)}",
            "ValidateUserDefinedFields=N", "ResetOnLogon=N", "SocketNodelay=Y",
            "", "[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={comp_id}", f"TargetCompID={target}", "",
        ]))  # fmt: skip
        settings = fix.SessionSettings(str(cfg))
        self.session_id = fix.SessionID("FIX.4.4", comp_id, target)
        self._init = fix.SocketInitiator(self, fix.FileStoreFactory(settings), settings)

    def start(self, timeout_s: float = 20) -> FixClient:
        self._init.start()
        if not self.logged_on.wait(timeout_s):
            raise AssertionError("the FIX client never logged on")
        return self

    def stop(self) -> None:
        if self._init is not None:
            self._init.stop()
            self._init = None  # destroyed: its session leaves QuickFIX's process-wide registry
            gc.collect()

    # QuickFIX callbacks
    def onCreate(self, sid: Any) -> None:  # noqa: N802
        pass

    def onLogon(self, sid: Any) -> None:  # noqa: N802
        self.logged_on.set()

    def onLogout(self, sid: Any) -> None:  # noqa: N802
        self.logged_on.clear()

    def toAdmin(self, m: Any, sid: Any) -> None:  # noqa: N802
        if m.getHeader().getField(Tag.MSG_TYPE) == "A" and self.password is not None:
            m.setField(Tag.USERNAME, self.username or "")
            m.setField(Tag.PASSWORD, self.password)

    def fromAdmin(self, m: Any, sid: Any) -> None:  # noqa: N802
        self.admin.append(fields(m))

    def toApp(self, m: Any, sid: Any) -> None:  # noqa: N802
        pass

    def fromApp(self, m: Any, sid: Any) -> None:  # noqa: N802
        f = fields(m)
        now = time.perf_counter()
        with self._lock:
            self.received.append(f)
            cl = f.get(Tag.CL_ORD_ID)
            if cl is not None and cl not in self.first_reply_at:
                self.first_reply_at[cl] = now
        self._q.put(f)

    # requests
    def new_order(
        self, cl: str, symbol: str, qty: int, *, start_ns: int, end_ns: int, side: str = "1",
        price: float | None = None, strategy: int | None = None, rate: float | None = None,
    ) -> None:  # fmt: skip
        self.send_fields("D", [
            (Tag.CL_ORD_ID, cl), (Tag.SYMBOL, symbol), (Tag.SIDE, side), (Tag.ORDER_QTY, str(qty)),
            (Tag.ORD_TYPE, "2" if price else "1"), (Tag.TRANSACT_TIME, utc(start_ns)),
            (Tag.EFFECTIVE_TIME, utc(start_ns)), (Tag.EXPIRE_TIME, utc(end_ns)),
            (Tag.PRICE, f"{price:.2f}" if price else None),
            (Tag.TARGET_STRATEGY, None if strategy is None else str(strategy)),
            (Tag.PARTICIPATION_RATE, None if rate is None else str(rate)),
        ], cl)  # fmt: skip

    def cancel(self, cl: str, orig: str, symbol: str, qty: int) -> None:
        self.send_fields("F", [
            (Tag.CL_ORD_ID, cl), (Tag.ORIG_CL_ORD_ID, orig), (Tag.SYMBOL, symbol), (Tag.SIDE, "1"),
            (Tag.ORDER_QTY, str(qty)), (Tag.TRANSACT_TIME, utc(time.time_ns())),
        ], cl)  # fmt: skip

    def replace(self, cl: str, orig: str, symbol: str, qty: int) -> None:
        self.send_fields("G", [
            (Tag.CL_ORD_ID, cl), (Tag.ORIG_CL_ORD_ID, orig), (Tag.SYMBOL, symbol), (Tag.SIDE, "1"),
            (Tag.ORDER_QTY, str(qty)), (Tag.ORD_TYPE, "1"), (Tag.TRANSACT_TIME, utc(time.time_ns())),
        ], cl)  # fmt: skip

    def status(self, cl: str, symbol: str) -> None:
        self.send_fields("H", [(Tag.CL_ORD_ID, cl), (Tag.SYMBOL, symbol), (Tag.SIDE, "1")], f"status-{cl}")

    def send_fields(self, msg_type: str, fields: list[tuple[int, str | None]], key: str) -> None:
        """A message of these fields (None: left out), built in one call into QuickFIX (``message``)."""
        self.send(message(msg_type, fields), key)

    def send(self, m: Any, key: str) -> None:
        with self._lock:
            self.sent_at.setdefault(key, time.perf_counter())
        fix.Session.sendToTarget(m, self.session_id)

    def wait(self, pred: Any, timeout_s: float = 30, what: str = "a message") -> dict[int, str]:
        """The first message received (so far or from now on) that satisfies ``pred``."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                for f in self.received:
                    if pred(f):
                        return f
            left = deadline - time.monotonic()
            if left <= 0:
                # Where every thread is (QuickFIX's, the broker client's listener): a stall says why here.
                faulthandler.dump_traceback(all_threads=True)
                raise AssertionError(f"no {what} within {timeout_s} s; received {self.received[-5:]}")
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=min(left, 0.2))

    def wait_order(self, cl: str, pred: Any, timeout_s: float = 30, what: str = "a report") -> dict[int, str]:
        """The first message for ClOrdID ``cl`` that satisfies ``pred``. A refusal of ``cl`` that ``pred``
        does not take (an ExecutionReport with ExecType Rejected, an OrderCancelReject) fails at once with
        its reason, rather than at the timeout."""

        def match(f: dict[int, str]) -> bool:
            if f.get(Tag.CL_ORD_ID) != cl:
                return False
            if pred(f):
                return True
            if f.get(Tag.MSG_TYPE) == "9" or (f.get(Tag.MSG_TYPE) == "8" and f.get(Tag.EXEC_TYPE) == "8"):
                raise AssertionError(f"waiting for {what} of {cl}, it was refused: {f.get(Tag.TEXT)!r}")
            return False

        return self.wait(match, timeout_s, f"{what} of {cl}")

    def reports(self, cl_prefix: str = "") -> list[dict[int, str]]:
        with self._lock:
            return [
                f
                for f in self.received
                if f.get(Tag.MSG_TYPE) == "8" and f.get(Tag.CL_ORD_ID, "").startswith(cl_prefix)
            ]
