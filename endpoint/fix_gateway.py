"""The FIX 4.4 acceptor on QuickFIX: clients' algo orders in, execution reports out.

Sessions are configured per client (``EndpointConfig.clients``); a CompID that is not configured cannot
log on (QuickFIX has no session for it). Sequence numbers and sent messages persist in a FileStore under
the state folder, so a restarted endpoint resumes each session and answers resend requests. Messages are
validated against FIX 4.4's data dictionary, extended with our values and tags:

- TargetStrategy (847): 1 = VWAP, 2 = POV (participate, with ParticipationRate 849), 1001 = TWAP,
  1002 = implementation shortfall (Almgren-Chriss), 1003 = RL; absent = TWAP.
- PolicyName (20001, on NewOrderSingle and OrderCancelReplaceRequest): a named policy file.
- ShortfallBps (20002) and VwapSlippageBps (20003) on a final ExecutionReport: TCA, positive = cost.

Malformed messages are answered by QuickFIX itself with a session Reject (35=3): missing or unknown tags,
wrong types, values outside the dictionary (what breaks the FIX grammar). An order the desk will not take
gets an ExecutionReport Rejected (39=8, 150=8) with its ClOrdID, OrdRejReason and Text, which an OMS can tie
to the order: values the dictionary cannot judge (a quantity that is not a positive whole number, an
unsupported Side, OrdType or TargetStrategy, a price out of range, a limit order without a price) and
business refusals (unknown symbol, duplicate ClOrdID, risk); a bad value on a cancel/replace gets an
OrderCancelReject. A NewOrderSingle for a known ClOrdID flagged as a possible resend (PossDupFlag 43 or
PossResend 97 = Y) is answered with the order's current state (an order-status ExecutionReport), never a
second parent or a reject of the live order. Unsupported message types get a BusinessMessageReject
(35=j). A garbled message (bad checksum or length) is dropped, as the FIX specification asks; the
sequence gap it leaves is filled by a resend.
"""

from __future__ import annotations

import gc
import hmac
import re
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import quickfix as fix
from prometheus_client import Counter, Gauge

from endpoint.config import EndpointConfig
from endpoint.desk import NewOrder, OrderDesk
from endpoint.risk import Refusal
from models import (
    ExecutionReport,
    Message,
    OrdType,
    RequestKind,
    RequestReject,
    Side,
    Strategy,
    TimeInForce,
    now_ns,
)
from models.fix import (
    EXEC_TYPE_OUT,
    ORD_STATUS_OUT,
    ORD_TYPE_IN,
    SIDE_IN,
    SIDE_OUT,
    STRATEGY_IN,
    TIF_IN,
    Body,
    Tag,
    dictionary,
    length_tags,
    parse_utc,
    send,
    utc,
)
from runtime.logs import get_logger
from runtime.secrets import verify_password

log = get_logger("paceline.endpoint.fix")

SESSIONS = Gauge("paceline_fix_sessions_logged_on", "FIX sessions logged on")
MESSAGES = Counter("paceline_fix_messages_in_total", "Application messages received", ["msg_type"])
REJECTS = Counter("paceline_fix_rejects_total", "Rejects sent, by kind and reason", ["kind", "reason"])
LOGON_REFUSED = Counter(
    "paceline_fix_logons_refused_total", "FIX logons refused by the credential check", ["reason"]
)
RESENDS = Counter(
    "paceline_fix_possible_resends_total", "NewOrderSingles flagged as possible resends of a known order"
)

ORD_REJ_REASON = {"unknown_symbol": "1", "duplicate": "6", "halted": "0", "reducing_only": "0",
                  "quantity": "13", "unsupported": "11", "window": "4"}  # fmt: skip
_EXEC_ID = re.compile(rb"\x0117=([^\x01]*)\x01")


class BadValueError(Exception):
    """A value the dictionary accepts but the desk does not: ``code`` is the refusal's (OrdRejReason)."""

    def __init__(self, tag: int, text: str, code: str = "invalid") -> None:
        super().__init__(text)
        self.tag = tag
        self.code = code


def session_settings(cfg: EndpointConfig) -> Path:
    state = cfg.state_dir
    (state / "store").mkdir(parents=True, exist_ok=True)
    (state / "log").mkdir(parents=True, exist_ok=True)
    lines = [
        "[DEFAULT]", "ConnectionType=acceptor", f"SocketAcceptPort={cfg.fix_port}", "SocketReuseAddress=Y",
        "SocketNodelay=Y", f"FileStorePath={state / 'store'}", f"FileLogPath={state / 'log'}",
        "StartTime=00:00:00", "EndTime=00:00:00", "UseDataDictionary=Y",
        f"DataDictionary={dictionary(state)}",
        "ValidateUserDefinedFields=Y", "ResetOnLogon=N", "ResetOnLogout=N", "ResetOnDisconnect=N",
        "PersistMessages=Y", f"SenderCompID={cfg.comp_id}",
    ]  # fmt: skip
    for c in cfg.clients:
        lines += ["", "[SESSION]", "BeginString=FIX.4.4", f"TargetCompID={c.comp_id}"]
        allowed = cfg.fix_allowed_addresses if c.allowed_addresses is None else c.allowed_addresses
        if allowed:  # QuickFIX closes a connection from anywhere else before its logon is read
            lines.append(f"AllowedRemoteAddresses={','.join(allowed)}")
    path = state / "acceptor.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def sent_exec_ids(state_dir: Path) -> set[str]:
    """ExecIDs of every report already handed to QuickFIX (its store keeps what it sent, for resends)."""
    out: set[str] = set()
    for body in (state_dir / "store").glob("*.body"):
        out.update(m.decode() for m in _EXEC_ID.findall(body.read_bytes()))
    return out


def _time(msg: fix.Message, tag: int) -> int | None:
    return parse_utc(msg.getField(tag)) if msg.isSetField(tag) else None


def _get(msg: fix.Message, tag: int) -> str | None:
    return msg.getField(tag) if msg.isSetField(tag) else None  # getField(int): the fast path


def _qty(msg: fix.Message, tag: int) -> int:
    raw = msg.getField(tag)
    try:
        q = float(raw)
    except ValueError:
        raise BadValueError(tag, f"quantity {raw!r} is not a number", "quantity") from None
    if q <= 0 or q != int(q):
        raise BadValueError(tag, f"quantity must be a positive whole number, got {raw}", "quantity")
    return int(q)


def _price(msg: fix.Message, tag: int) -> float | None:
    raw = _get(msg, tag)
    if raw is None:
        return None
    px = float(raw)
    if not 0 < px <= 1e7:  # also refuses NaN
        raise BadValueError(tag, f"price {raw} is not a valid positive price", "price")
    return px


class FixGateway(fix.Application):  # type: ignore[misc]
    def __init__(self, cfg: EndpointConfig, desk: OrderDesk, market_now: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.desk = desk
        self.market_now = market_now  # symbol -> the latest tick's event time (or None)
        self.sessions: dict[str, Any] = {}  # client id -> SessionID
        self.logged_on: set[str] = set()
        self._acceptor: Any = None

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        settings = fix.SessionSettings(str(session_settings(self.cfg)))
        length_tags()  # read from the dictionary now, not on the first order's way in
        self._acceptor = fix.ThreadedSocketAcceptor(
            self, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
        )
        for c in self.cfg.clients:
            self.desk.attach(c.client_id, partial(self._deliver, c.client_id))
        self._acceptor.start()
        log.info(
            "FIX acceptor listening", port=self.cfg.fix_port, clients=[c.comp_id for c in self.cfg.clients]
        )

    def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()
            # QuickFIX keeps sessions in a process-wide registry until the acceptor is destroyed; a
            # successor in the same process (a restart) must not find this one's sessions there.
            self._acceptor = None
            gc.collect()

    # --- QuickFIX callbacks ---------------------------------------------------------------------------
    def onCreate(self, session_id: Any) -> None:  # noqa: N802 (QuickFIX's names)
        client = self.cfg.client_by_comp_id(session_id.getTargetCompID().getValue())
        if client is not None:
            self.sessions[client.client_id] = session_id

    def onLogon(self, session_id: Any) -> None:  # noqa: N802
        self.logged_on.add(session_id.toString())
        SESSIONS.set(len(self.logged_on))
        log.info("FIX logon", session=session_id.toString())

    def onLogout(self, session_id: Any) -> None:  # noqa: N802
        self.logged_on.discard(session_id.toString())
        SESSIONS.set(len(self.logged_on))
        log.info("FIX logout", session=session_id.toString())

    def toAdmin(self, message: Any, session_id: Any) -> None:  # noqa: N802
        if message.getHeader().getField(Tag.MSG_TYPE) == "3":
            REJECTS.labels(
                "session",
                message.getField(Tag.SESSION_REJECT_REASON)
                if message.isSetField(Tag.SESSION_REJECT_REASON)
                else "",
            ).inc()

    def fromAdmin(self, message: Any, session_id: Any) -> None:  # noqa: N802
        if message.getHeader().getField(Tag.MSG_TYPE) == "A":
            self._check_logon(message, session_id)

    def _check_logon(self, m: Any, sid: Any) -> None:
        """Username (553) and Password (554) against the client's stored hash. The client is only told
        "logon refused" (never which part was wrong); the log and the metric keep the reason."""
        client = self.cfg.client_by_comp_id(sid.getTargetCompID().getValue())
        if client is None or client.password_hash is None:
            return
        user, password = _get(m, Tag.USERNAME), _get(m, Tag.PASSWORD)
        reason = None
        if user is None or password is None:
            reason = "missing_credentials"
        elif not hmac.compare_digest(user.encode(), client.client_id.encode()):
            reason = "bad_username"
        elif not verify_password(password, client.password_hash):
            reason = "bad_password"
        if reason is not None:
            LOGON_REFUSED.labels(reason).inc()
            log.warning("FIX logon refused", comp_id=client.comp_id, reason=reason)
            raise fix.RejectLogon("logon refused")

    def toApp(self, message: Any, session_id: Any) -> None:  # noqa: N802
        pass

    def fromApp(self, message: Any, session_id: Any) -> None:  # noqa: N802
        recv_ns = now_ns()
        msg_type = message.getHeader().getField(Tag.MSG_TYPE)
        MESSAGES.labels(msg_type).inc()
        client = self.cfg.client_by_comp_id(session_id.getTargetCompID().getValue())
        if client is None:  # cannot happen: QuickFIX only creates configured sessions
            raise fix.RejectLogon("unknown CompID")
        body = Body(message)
        try:
            if msg_type == "D":
                self._new_order(client.client_id, body, session_id, recv_ns)
            elif msg_type == "F":
                self._cancel(client.client_id, body, session_id)
            elif msg_type == "G":
                self._replace(client.client_id, body, session_id)
            elif msg_type == "H":
                self._status(client.client_id, body, session_id)
            else:
                REJECTS.labels("business", "unsupported").inc()
                raise fix.UnsupportedMessageType()
        except BadValueError as exc:
            REJECTS.labels("session", "value").inc()
            log.warning("FIX value refused", tag=exc.tag, reason=str(exc))
            raise fix.IncorrectTagValue(exc.tag) from None

    # --- requests -------------------------------------------------------------------------------------
    def _new_order(self, client_id: str, m: Any, sid: Any, recv_ns: int | None = None) -> None:
        cl = m.getField(Tag.CL_ORD_ID)
        header = m.getHeader()
        if any(
            header.isSetField(t) and header.getField(t) == "Y" for t in (Tag.POSS_DUP_FLAG, Tag.POSS_RESEND)
        ):
            known = self.desk.status(client_id, cl)
            if known is not None:  # a resend of a live (or finished) order: its state, not a reject
                RESENDS.inc()
                log.info("FIX possible resend of a known order answered with its status", cl_ord_id=cl)
                self._send_status(known, sid, "possible resend of a known order: its current state")
                return
        try:
            symbol, side, qty, ord_type, px, strategy = self._order_fields(m)
        except BadValueError as exc:
            log.warning("FIX order refused by value", tag=exc.tag, reason=str(exc))
            self._reject_order(sid, m, Refusal(exc.code, f"{exc} (tag {exc.tag})"))
            return
        rate = _get(m, Tag.PARTICIPATION_RATE)
        order = NewOrder(
            cl_ord_id=cl, symbol=symbol, side=side, quantity=qty, ord_type=ord_type,
            limit_px=px if ord_type is OrdType.LIMIT else None,
            time_in_force=TIF_IN.get(_get(m, Tag.TIME_IN_FORCE) or "0", TimeInForce.DAY),
            start_ns=_time(m, Tag.EFFECTIVE_TIME), end_ns=_time(m, Tag.EXPIRE_TIME),
            strategy=strategy, participation_rate=float(rate) if rate else None,
            policy=_get(m, Tag.POLICY_NAME), recv_ns=recv_ns,
        )  # fmt: skip
        refusal = self.desk.new_order(client_id, order, self.market_now)
        if refusal is not None:
            self._reject_order(sid, m, refusal)

    @staticmethod
    def _order_fields(m: Any) -> tuple[str, Side, int, OrdType, float | None, Strategy]:
        symbol = m.getField(Tag.SYMBOL)
        side = SIDE_IN.get(m.getField(Tag.SIDE))
        if side is None:
            raise BadValueError(Tag.SIDE, "side must be 1 (buy) or 2 (sell)", "unsupported")
        qty = _qty(m, Tag.ORDER_QTY)
        ord_type = ORD_TYPE_IN.get(m.getField(Tag.ORD_TYPE))
        if ord_type is None:
            raise BadValueError(Tag.ORD_TYPE, "OrdType must be 1 (market) or 2 (limit)", "unsupported")
        px = _price(m, Tag.PRICE)
        if ord_type is OrdType.LIMIT and px is None:
            raise BadValueError(Tag.PRICE, "a limit order needs Price (44)", "price")
        raw_strategy = _get(m, Tag.TARGET_STRATEGY)
        strategy = STRATEGY_IN.get(int(raw_strategy)) if raw_strategy else Strategy.TWAP
        if strategy is None:
            raise BadValueError(
                Tag.TARGET_STRATEGY, f"TargetStrategy {raw_strategy} is not supported", "unsupported"
            )
        return symbol, side, qty, ord_type, px, strategy

    def _reject_order(self, sid: Any, m: Any, r: Refusal) -> None:
        REJECTS.labels("order", r.code).inc()
        code = ORD_REJ_REASON.get(r.code, "3" if r.code.endswith(("notional", "position")) else "99")
        send(sid, "8", [
            *self._er_header("NONE", m.getField(Tag.CL_ORD_ID), f"rej-{uuid.uuid4().hex[:16]}", "8", "8"),
            (Tag.SYMBOL, m.getField(Tag.SYMBOL)), (Tag.SIDE, m.getField(Tag.SIDE)),
            (Tag.ORDER_QTY, m.getField(Tag.ORDER_QTY)),
            (Tag.CUM_QTY, "0"), (Tag.LEAVES_QTY, "0"), (Tag.AVG_PX, "0"),
            (Tag.ORD_REJ_REASON, code), (Tag.TEXT, r.text[:200]),
        ])  # fmt: skip

    def _cancel(self, client_id: str, m: Any, sid: Any) -> None:
        refusal = self.desk.cancel(client_id, m.getField(Tag.CL_ORD_ID), m.getField(Tag.ORIG_CL_ORD_ID))
        if refusal is not None:
            self._cancel_reject(sid, m.getField(Tag.CL_ORD_ID), m.getField(Tag.ORIG_CL_ORD_ID), "1", refusal)

    def _replace(self, client_id: str, m: Any, sid: Any) -> None:
        end = _time(m, Tag.EXPIRE_TIME)
        try:
            qty, px = _qty(m, Tag.ORDER_QTY), _price(m, Tag.PRICE)
        except BadValueError as exc:
            self._cancel_reject(
                sid,
                m.getField(Tag.CL_ORD_ID),
                m.getField(Tag.ORIG_CL_ORD_ID),
                "2",
                Refusal(exc.code, str(exc)),
            )
            return
        refusal = self.desk.amend(
            client_id, m.getField(Tag.CL_ORD_ID), m.getField(Tag.ORIG_CL_ORD_ID), qty, limit_px=px, end_ns=end
        )
        if refusal is not None:
            self._cancel_reject(sid, m.getField(Tag.CL_ORD_ID), m.getField(Tag.ORIG_CL_ORD_ID), "2", refusal)

    def _status(self, client_id: str, m: Any, sid: Any) -> None:
        o = self.desk.status(client_id, m.getField(Tag.CL_ORD_ID))
        if o is None:
            REJECTS.labels("business", "unknown_order").inc()
            send(sid, "j", [
                (Tag.REF_SEQ_NUM, m.getHeader().getField(Tag.MSG_SEQ_NUM)), (Tag.REF_MSG_TYPE, "H"),
                (Tag.BUSINESS_REJECT_REASON, "0"),  # other
                (Tag.TEXT, f"unknown order {m.getField(Tag.CL_ORD_ID)}"),
            ])  # fmt: skip
            return
        self._send_status(o, sid)

    def _send_status(self, o: Any, sid: Any, text: str | None = None) -> None:
        """An order-status ExecutionReport (150=I): the order as the desk holds it now."""
        # Why it is where it is (waiting for a worker, no market data, ...): the saga's latest word on it.
        text = text or (o.last.text if o.last is not None else None)
        send(sid, "8", [
            *self._er_header(o.parent.parent_id, o.cl_ord_id, f"st-{uuid.uuid4().hex[:16]}", "I",
                             ORD_STATUS_OUT[o.status]),
            (Tag.SYMBOL, o.parent.symbol), (Tag.SIDE, SIDE_OUT[o.parent.side]),
            (Tag.ORDER_QTY, str(o.parent.quantity)), (Tag.CUM_QTY, str(o.cum_qty)),
            (Tag.LEAVES_QTY, "0" if o.status.terminal else str(o.parent.quantity - o.cum_qty)),
            (Tag.AVG_PX, f"{o.avg_px:.6f}"), (Tag.TEXT, text[:200] if text else None),
        ])  # fmt: skip

    def _cancel_reject(self, sid: Any, cl: str, orig: str, response_to: str, r: Refusal) -> None:
        REJECTS.labels("cancel", r.code).inc()
        o = self.desk.find(self._client_of(sid), orig)
        self._send_cancel_reject(sid, r, order_id=o.parent.parent_id if o else "NONE", cl=cl, orig=orig,
                                 ord_status=ORD_STATUS_OUT[o.status] if o else "8",
                                 response_to=response_to)  # fmt: skip

    @staticmethod
    def _send_cancel_reject(
        sid: Any, r: Refusal, *, order_id: str, cl: str, orig: str, ord_status: str, response_to: str
    ) -> None:
        """An OrderCancelReject (35=9), from the desk's own refusal or the saga's."""
        send(sid, "9", [
            (Tag.ORDER_ID, order_id), (Tag.CL_ORD_ID, cl), (Tag.ORIG_CL_ORD_ID, orig),
            (Tag.ORD_STATUS, ord_status), (Tag.CXL_REJ_RESPONSE_TO, response_to),
            (Tag.CXL_REJ_REASON, {"too_late": "0", "unknown_order": "1"}.get(r.code, "99")),
            (Tag.TEXT, r.text[:200]),
        ])  # fmt: skip

    def _client_of(self, sid: Any) -> str:
        c = self.cfg.client_by_comp_id(sid.getTargetCompID().getValue())
        return c.client_id if c else ""

    # --- reports out ----------------------------------------------------------------------------------
    @staticmethod
    def _er_header(
        order_id: str, cl: str, exec_id: str, exec_type: str, status: str
    ) -> list[tuple[int, str | None]]:
        return [(Tag.ORDER_ID, order_id), (Tag.CL_ORD_ID, cl), (Tag.EXEC_ID, exec_id),
                (Tag.EXEC_TYPE, exec_type), (Tag.ORD_STATUS, status),
                (Tag.TRANSACT_TIME, utc(now_ns()))]  # fmt: skip

    @classmethod
    def report_fields(cls, m: ExecutionReport) -> list[tuple[int, str | None]]:
        """An ExecutionReport's FIX fields (35=8), as ``send`` takes them."""
        slip = m.vwap_slippage_bps
        return [
            *cls._er_header(m.parent_id, m.cl_ord_id, m.report_id, EXEC_TYPE_OUT[m.exec_type],
                            ORD_STATUS_OUT[m.ord_status]),
            (Tag.ORIG_CL_ORD_ID, m.orig_cl_ord_id or None), (Tag.SYMBOL, m.symbol),
            (Tag.SIDE, SIDE_OUT[m.side]), (Tag.ORDER_QTY, str(m.order_qty)),
            (Tag.LAST_QTY, str(m.last_qty)),
            (Tag.LAST_PX, None if m.last_px is None else f"{m.last_px:.4f}"),
            (Tag.CUM_QTY, str(m.cum_qty)), (Tag.LEAVES_QTY, str(m.leaves_qty)),
            (Tag.AVG_PX, f"{m.avg_px:.6f}"), (Tag.TEXT, m.text[:200] if m.text else None),
            (Tag.SHORTFALL_BPS, None if m.is_bps is None else f"{m.is_bps:.3f}"),
            (Tag.VWAP_SLIPPAGE_BPS, None if slip is None else f"{slip:.3f}"),
        ]  # fmt: skip

    def _deliver(self, client_id: str, m: Message) -> None:
        sid = self.sessions.get(client_id)
        if sid is None:
            return
        if isinstance(m, ExecutionReport):
            send(sid, "8", self.report_fields(m))
        elif isinstance(m, RequestReject):
            REJECTS.labels("cancel", "saga").inc()
            self._send_cancel_reject(
                sid,
                Refusal("too_late" if m.too_late else "other", m.reason),
                order_id=m.parent_id,
                cl=m.cl_ord_id,
                orig=m.orig_cl_ord_id,
                ord_status=ORD_STATUS_OUT[m.ord_status],
                response_to="1" if m.request is RequestKind.CANCEL else "2",
            )
