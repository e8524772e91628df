"""A FIX message built from ``models.fix.wire`` in one call is the message ``setField`` builds field by
field, and a value cannot add fields of its own; ``models.fix.Body`` reads a received body as QuickFIX's
``getField`` does, in one call where the body is plain and field by field where it is not; FIX timestamps
are written and read exactly, and a malformed one is refused."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from endpoint.fix_gateway import FixGateway
from models.fix import Body, Tag, dictionary, message, parse_utc, utc


def test_wire_builds_what_set_field_builds() -> None:
    fields = [*FixGateway._er_header("P1", "C-1", "E1", "0", "0"), (Tag.SYMBOL, "AAPL"), (Tag.SIDE, "1"),
              (Tag.ORDER_QTY, "100"), (Tag.LAST_PX, None), (Tag.AVG_PX, "0.000000"),
              (Tag.TEXT, "waiting for a worker = yes")]  # fmt: skip
    by_field = fix.Message()
    by_field.getHeader().setField(Tag.MSG_TYPE, "8")
    for tag, value in fields:
        if value is not None:
            by_field.setField(tag, value)
    one_call = message("8", fields)
    assert one_call.toString() == by_field.toString()
    assert one_call.getHeader().getField(Tag.MSG_TYPE) == "8"
    assert not one_call.isSetField(Tag.LAST_PX)  # None: left out


def test_a_value_cannot_add_fields() -> None:
    text = "bad\x0144=1.23\x01"  # free text with SOH in it would otherwise carry a Price
    m = message("8", [(Tag.CL_ORD_ID, "C-1"), (Tag.TEXT, text)])
    assert not m.isSetField(Tag.PRICE)
    assert m.getField(Tag.TEXT) == "bad 44=1.23 "
    assert m.getField(Tag.CL_ORD_ID) == "C-1"


def _parsed(tmp_path: Path, body: str) -> Any:
    """A NewOrderSingle as the session hands it to the application: parsed against our dictionary."""
    dd = fix.DataDictionary(str(dictionary(tmp_path)))
    head = "35=D\x0149=CLIENT1\x0156=PACELINE\x0134=2\x0152=20261205-10:00:00.000\x01"
    text = f"8=FIX.4.4\x019={len(head) + len(body)}\x01{head}{body}"
    return fix.Message(f"{text}10={sum(text.encode()) % 256:03d}\x01", dd, True)


NOS = ("11=C-1\x0121=1\x0138=100\x0140=2\x0144=99.5\x0154=1\x0155=AAPL\x0159=0\x01"
       "60=20261205-10:00:00.000\x01847=1001\x01")  # fmt: skip
READ = (Tag.CL_ORD_ID, Tag.SYMBOL, Tag.SIDE, Tag.ORDER_QTY, Tag.ORD_TYPE, Tag.PRICE, Tag.TIME_IN_FORCE,
        Tag.TARGET_STRATEGY, Tag.EFFECTIVE_TIME, Tag.EXPIRE_TIME, Tag.PARTICIPATION_RATE,
        Tag.POLICY_NAME)  # fmt: skip


def _same_reads(m: Any, body: Body) -> None:
    for tag in READ:
        assert body.isSetField(tag) == m.isSetField(tag), tag
        if m.isSetField(tag):
            assert body.getField(tag) == m.getField(tag), tag
        else:
            with pytest.raises(fix.FieldNotFound):
                body.getField(tag)


def test_a_plain_body_is_read_in_one_call_as_quickfix_reads_it(tmp_path: Path) -> None:
    m = _parsed(tmp_path, NOS)
    body = Body(m)
    assert body._fields is not None  # read from the one call, not field by field
    _same_reads(m, body)
    assert body.getHeader().getField(Tag.MSG_TYPE) == "D"


def test_a_data_field_or_a_group_is_read_field_by_field(tmp_path: Path) -> None:
    # EncodedText's bytes hold SOH and what looks like a TargetStrategy: split on SOH it would be read as one.
    data = "x\x01847=1003"
    encoded = _parsed(tmp_path, f"{NOS[: -len('847=1001') - 1]}354={len(data)}\x01355={data}\x01")
    assert encoded.getField(355) == data
    body = Body(encoded)
    assert body._fields is None
    _same_reads(encoded, body)
    assert not body.isSetField(Tag.TARGET_STRATEGY)
    # Two parties: their tags repeat.
    parties = "453=2\x01448=A\x01447=D\x01452=1\x01448=B\x01447=D\x01452=3\x01"
    grouped = _parsed(tmp_path, NOS + parties)
    body = Body(grouped)
    assert body._fields is None
    _same_reads(grouped, body)


def test_the_bench_times_both_ways_each_way() -> None:
    from paceline.bench.codec import fix_calls

    rows = fix_calls(20)
    assert [r["case"].split(",")[0] for r in rows] == ["order read"] * 2 + ["report built"] * 2
    assert all(0 < r[k][0] <= r[k][1] for r in rows for k in ("alone", "busy"))


def test_timestamps_are_written_and_read_exactly() -> None:
    """``utc`` truncates to the millisecond as datetime's own formatting of the same instant does (the float
    seconds it once went through rounded some up), and ``parse_utc`` reads every width of fractions."""
    epoch, rng = datetime(1970, 1, 1, tzinfo=UTC), random.Random(7)
    edges = [0, 999_999, 1_796_653_799_999_999_999]  # the last: float seconds rounded it to the next second
    for ts in [*edges, *(rng.randrange(4_102_444_800 * 10**9) for _ in range(3000))]:
        text = utc(ts)
        assert text == (epoch + timedelta(microseconds=ts // 1000)).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
        assert parse_utc(text) == ts // 1_000_000 * 1_000_000
    assert parse_utc("20261207-14:30:00") == 1_796_653_800 * 10**9
    assert parse_utc("20261207-14:30:00.5") == 1_796_653_800_500_000_000
    assert parse_utc("20261207-14:30:00.123456789") == 1_796_653_800_123_456_789


@pytest.mark.parametrize(
    "text",
    ["2026127-14:30:00", "20261307-14:30:00", "20260230-14:30:00", "20261207-24:00:00", "20261207-14:30:00.",
     "20261207-14:30:00.1234567890", "20261207 14:30:00", "\u0662\u0660\u0662\u06601207-14:30:00", ""],
)  # fmt: skip
def test_a_malformed_timestamp_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)


def test_the_bench_times_a_new_order_through_the_gateway_and_the_desk_after_each_pause() -> None:
    """Each order is taken (its request encoded) and told New (built as FIX), or the bench raises."""
    from paceline.bench.codec import desk_path

    rows = desk_path(orders=5, pauses_ms=(1, 2))
    assert [r["pause_ms"] for r in rows] == [0, 1, 2]
    assert all(0 < r[k][0] <= r[k][1] for r in rows for k in ("in", "out"))
