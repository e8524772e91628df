"""The order desk on its own (no transport, no broker): what it refuses at once, and what it publishes."""

from __future__ import annotations

from endpoint.config import Limits
from endpoint.desk import OrderDesk
from endpoint.risk import RiskGate
from models import JobRequest, Message
from tests.factories import parent, tick


def _desk() -> tuple[OrderDesk, list[Message]]:
    sent: list[Message] = []
    risk = RiskGate({"CLIENT1": Limits()})
    return OrderDesk(lambda topic, m, key: sent.append(m), risk, ("AAPL", "NVDA")), sent


def test_a_configured_symbol_that_has_never_ticked_is_refused_at_once() -> None:
    """Its saga's window runs on the symbol's market clock, which would never start: the parent would hang."""
    desk, sent = _desk()
    desk.tca.on_tick(tick(symbol="AAPL"))
    refusal = desk.submit(parent(symbol="NVDA", cl_ord_id="C-1", parent_id="CLIENT1.C-1"))
    assert refusal is not None and refusal.code == "no_market_data"
    assert refusal.text == "no market data for NVDA" and sent == []
    assert desk.submit(parent(symbol="AAPL", cl_ord_id="C-2", parent_id="CLIENT1.C-2")) is None
    assert [type(m) for m in sent] == [JobRequest]
    refused = desk.submit(parent(symbol="TSLA", cl_ord_id="C-3", parent_id="CLIENT1.C-3"))
    assert refused is not None and refused.code == "unknown_symbol"
