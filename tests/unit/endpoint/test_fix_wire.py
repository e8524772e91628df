"""A FIX message built from ``models.fix.wire`` in one call is the message ``setField`` builds field by
field, and a value cannot add fields of its own."""

from __future__ import annotations

import quickfix as fix

from endpoint.fix_gateway import FixGateway
from models.fix import Tag, wire


def test_wire_builds_what_set_field_builds() -> None:
    fields = [*FixGateway._er_header("P1", "C-1", "E1", "0", "0"), (Tag.SYMBOL, "AAPL"), (Tag.SIDE, "1"),
              (Tag.ORDER_QTY, "100"), (Tag.LAST_PX, None), (Tag.AVG_PX, "0.000000"),
              (Tag.TEXT, "waiting for a worker = yes")]  # fmt: skip
    by_field = fix.Message()
    by_field.getHeader().setField(Tag.MSG_TYPE, "8")
    for tag, value in fields:
        if value is not None:
            by_field.setField(tag, value)
    one_call = fix.Message(wire("8", fields), False)
    assert one_call.toString() == by_field.toString()
    assert one_call.getHeader().getField(Tag.MSG_TYPE) == "8"
    assert not one_call.isSetField(Tag.LAST_PX)  # None: left out


def test_a_value_cannot_add_fields() -> None:
    text = "bad\x0144=1.23\x01"  # free text with SOH in it would otherwise carry a Price
    m = fix.Message(wire("8", [(Tag.CL_ORD_ID, "C-1"), (Tag.TEXT, text)]), False)
    assert not m.isSetField(Tag.PRICE)
    assert m.getField(Tag.TEXT) == "bad 44=1.23 "
    assert m.getField(Tag.CL_ORD_ID) == "C-1"
