"""The FIX 4.4 dialect Paceline speaks, one definition for the endpoint, the broker route, the client
library and the tests: tag numbers by name, our custom tags and strategy codes, value mappings, the data
dictionary (QuickFIX's FIX 4.4 with those additions), FIX timestamps, and messages written and read in one
call into QuickFIX each (``wire``, ``send``, ``Body``)."""

from __future__ import annotations

import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import quickfix as fix

from models.common import OrdType, Side, Strategy, TimeInForce
from models.orders import ExecType, OrdStatus


class Tag:
    """Tag numbers (FIX 4.4), by the standard's field names."""

    AVG_PX = 6
    BEGIN_SEQ_NO = 7
    CL_ORD_ID = 11
    CUM_QTY = 14
    END_SEQ_NO = 16
    EXEC_ID = 17
    LAST_PX = 31
    LAST_QTY = 32
    MSG_SEQ_NUM = 34
    MSG_TYPE = 35
    ORDER_ID = 37
    ORDER_QTY = 38
    ORD_STATUS = 39
    ORD_TYPE = 40
    ORIG_CL_ORD_ID = 41
    POSS_DUP_FLAG = 43
    PRICE = 44
    REF_SEQ_NUM = 45
    SENDER_COMP_ID = 49
    SENDING_TIME = 52
    SIDE = 54
    SYMBOL = 55
    TARGET_COMP_ID = 56
    TEXT = 58
    TIME_IN_FORCE = 59
    TRANSACT_TIME = 60
    POSS_RESEND = 97
    ENCRYPT_METHOD = 98
    CXL_REJ_REASON = 102
    ORD_REJ_REASON = 103
    HEART_BT_INT = 108
    ORIG_SENDING_TIME = 122
    EXPIRE_TIME = 126
    RESET_SEQ_NUM_FLAG = 141
    EXEC_TYPE = 150
    LEAVES_QTY = 151
    EFFECTIVE_TIME = 168
    REF_TAG_ID = 371
    REF_MSG_TYPE = 372
    SESSION_REJECT_REASON = 373
    BUSINESS_REJECT_REASON = 380
    CXL_REJ_RESPONSE_TO = 434
    USERNAME = 553
    PASSWORD = 554
    TARGET_STRATEGY = 847
    PARTICIPATION_RATE = 849
    # Ours (user-defined range): the policy file an RL parent asks for; TCA on the final report.
    POLICY_NAME = 20001
    SHORTFALL_BPS = 20002
    VWAP_SLIPPAGE_BPS = 20003


# TargetStrategy 847: FIX's VWAP (1) and participate (2), and ours from 1001.
STRATEGY_IN = {1: Strategy.VWAP, 2: Strategy.POV, 1001: Strategy.TWAP, 1002: Strategy.IS, 1003: Strategy.RL}
STRATEGY_OUT = {v: k for k, v in STRATEGY_IN.items()}
SIDE_IN = {"1": Side.BUY, "2": Side.SELL}
SIDE_OUT = {v: k for k, v in SIDE_IN.items()}
ORD_TYPE_IN = {"1": OrdType.MARKET, "2": OrdType.LIMIT}
ORD_TYPE_OUT = {v: k for k, v in ORD_TYPE_IN.items()}
TIF_IN = {"0": TimeInForce.DAY, "3": TimeInForce.IOC, "6": TimeInForce.GTD}
EXEC_TYPE_OUT = {
    ExecType.NEW: "0", ExecType.DONE_FOR_DAY: "3", ExecType.CANCELED: "4", ExecType.REPLACED: "5",
    ExecType.REJECTED: "8", ExecType.EXPIRED: "C", ExecType.TRADE: "F", ExecType.ORDER_STATUS: "I",
}  # fmt: skip
ORD_STATUS_OUT = {
    OrdStatus.NEW: "0", OrdStatus.PARTIALLY_FILLED: "1", OrdStatus.FILLED: "2", OrdStatus.DONE_FOR_DAY: "3",
    OrdStatus.CANCELED: "4", OrdStatus.REJECTED: "8", OrdStatus.EXPIRED: "C",
}  # fmt: skip
TERMINAL_ORD_STATUS = frozenset(
    code for st, code in ORD_STATUS_OUT.items() if st.terminal
)  # a final report's 39


_FIX44 = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"  # as installed with QuickFIX


def dictionary(state_dir: Path) -> Path:
    """FIX 4.4's dictionary as installed with QuickFIX, with our strategies and custom tags added."""
    tree = ET.parse(_FIX44)
    root = tree.getroot()
    fields = root.find("fields")
    assert fields is not None
    for f in fields.findall("field"):
        if f.get("number") == str(Tag.TARGET_STRATEGY):
            for enum, desc in ((1001, "TWAP"), (1002, "IMPLEMENTATION_SHORTFALL"), (1003, "RL")):
                ET.SubElement(f, "value", enum=str(enum), description=desc)
    for number, name, typ in ((Tag.POLICY_NAME, "PolicyName", "STRING"),
                              (Tag.SHORTFALL_BPS, "ShortfallBps", "FLOAT"),
                              (Tag.VWAP_SLIPPAGE_BPS, "VwapSlippageBps", "FLOAT")):  # fmt: skip
        ET.SubElement(fields, "field", number=str(number), name=name, type=typ)
    extra = {"NewOrderSingle": ["PolicyName"], "OrderCancelReplaceRequest": ["PolicyName"],
             "ExecutionReport": ["ShortfallBps", "VwapSlippageBps"]}  # fmt: skip
    messages = root.find("messages")
    assert messages is not None
    for m in messages.findall("message"):
        for name in extra.get(m.get("name") or "", []):
            ET.SubElement(m, "field", name=name, required="N")
    state_dir.mkdir(parents=True, exist_ok=True)
    out = state_dir / "FIX44-paceline.xml"
    tree.write(out, encoding="utf-8", xml_declaration=True)
    return out


SOH = "\x01"


def wire(msg_type: str, fields: Iterable[tuple[int, str | None]]) -> str:
    """An application message's MsgType and fields as FIX text (``tag=value`` each ended by SOH), fields
    whose value is None left out; QuickFIX's ``Message(text, False)`` takes it in one call and the session
    adds the rest of the header as it sends. One call, where ``setField`` is one call a field: QuickFIX's
    Python binding lets the GIL go and takes it back around every call, and a thread in a busy process then
    waits for it each time (docs/PERFORMANCE.md). A value cannot hold SOH, which ends a field: one there (only
    free text or a native client's id can have it) becomes a space, so it cannot add fields of its own."""
    parts = [f"35={msg_type}"]
    for tag, value in fields:
        if value is not None:
            parts.append(f"{tag:d}={value.replace(SOH, ' ')}")
    parts.append("")
    return SOH.join(parts)


def message(msg_type: str, fields: Iterable[tuple[int, str | None]]) -> Any:
    """A QuickFIX message of these fields, built in one call into QuickFIX (``wire``)."""
    return fix.Message(wire(msg_type, fields), False)


def send(session_id: Any, msg_type: str, fields: Iterable[tuple[int, str | None]]) -> None:
    """One message to a session (``message``)."""
    fix.Session.sendToTarget(message(msg_type, fields), session_id)


@cache
def length_tags() -> frozenset[int]:
    """FIX 4.4's fields of type LENGTH: each gives the byte length of the DATA field after it, whose value
    may hold SOH."""
    root = ET.parse(_FIX44).getroot()
    return frozenset(int(f.get("number") or 0) for f in root.iter("field") if f.get("type") == "LENGTH")


class Body:
    """A received message's body read in one call into QuickFIX, with QuickFIX's ``getField`` and
    ``isSetField`` (and ``getHeader``) over it: reading fields one call each let the GIL go and waited to take
    it back every time (``wire``). Only a plain body is read so: a tag that repeats (a repeating group's)
    or a length-prefixed data field (whose value may hold SOH) sends every read back to QuickFIX, field by
    field. The session has checked the body against the dictionary before the application sees it."""

    def __init__(self, m: Any) -> None:
        self._m = m
        # FieldMap::calculateString(std::string&): the body's own fields as text; SWIG returns {0: text}.
        self._fields = _plain_fields(m.calculateString("")[0])

    def getHeader(self) -> Any:  # noqa: N802 (QuickFIX's names)
        return self._m.getHeader()

    def isSetField(self, tag: int) -> bool:  # noqa: N802
        return tag in self._fields if self._fields is not None else bool(self._m.isSetField(tag))

    def getField(self, tag: int) -> str:  # noqa: N802
        if self._fields is None:
            return str(self._m.getField(tag))
        try:
            return self._fields[tag]
        except KeyError:
            raise fix.FieldNotFound(tag) from None


def _plain_fields(text: str) -> dict[int, str] | None:
    """``tag=value`` fields ended by SOH as a dict, or None where a tag repeats, a field is a length (its data
    field may hold SOH) or a part is not ``tag=value``."""
    out: dict[int, str] = {}
    lengths = length_tags()
    parts = text.split(SOH)
    if parts.pop() != "":
        return None
    for part in parts:
        tag, sep, value = part.partition("=")
        if not sep or not tag.isdigit():
            return None
        t = int(tag)
        if t in out or t in lengths:
            return None
        out[t] = value
    return out


# A FIX UTCTimestamp: fixed-width date and time, then up to nine digits of fractions (QuickFIX writes three).
_UTC_TIMESTAMP = re.compile(
    r"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?", re.ASCII
).fullmatch
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


# Both conversions are on every order's path (its times in, its reports' TransactTime out, the client's own)
# and are written from integers: ``strptime`` and ``strftime`` are pure Python and C with a large footprint,
# which on this VM's shared cores costs ~100 µs each on a path run cold (docs/PERFORMANCE.md). Exact in
# integers, where float seconds were a microsecond off (or, at a second's very end, a whole second).
def utc(ts_ns: int) -> str:
    """A FIX UTCTimestamp (milliseconds, truncated) of ``ts_ns``."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    t = time.gmtime(sec)
    return (
        f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}-{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f".{ns // 1_000_000:03d}"
    )


def parse_utc(value: str) -> int:
    """A FIX UTCTimestamp (with or without fractions) in ns since the epoch; ValueError if it is not one."""
    m = _UTC_TIMESTAMP(value)
    if m is None:
        raise ValueError(f"{value!r} is not a FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.fff])")
    y, mo, d, h, mi, s, frac = m.groups()
    at = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)  # refuses a 13th month
    return (at - _EPOCH) // _SECOND * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
