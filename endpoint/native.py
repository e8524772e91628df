"""The native protocol: WebSocket with JSON messages that mirror the models, same semantics as FIX.

Authenticate with ``Authorization: Bearer <token>`` (per client; the config keeps its hash); a bad or
missing token closes the connection (1008) before anything else. TLS (``wss://``) when the config names a
certificate and key. Refusals, each a close code and a reason, counted in
``paceline_native_refused_total{reason}``:

- 1008 "bad or missing token"; 1013 "too many failed authentications from this address" (more than
  ``native_auth_failures_per_min`` in a minute: refused for the next minute without a look at the token);
- 1013 "too many connections for this client" (``native_max_connections_per_client``);
- 1009 a message over ``native_max_message_bytes``; 1001 "idle timeout" (nothing for ``native_idle_s``).

Then send one JSON object per message:

- ``{"op": "submit", "cl_ord_id", "symbol", "side", "quantity", "ord_type"?, "limit_px"?, "start_ns"?,
  "end_ns", "strategy"?, "participation_rate"?, "policy"?}``
- ``{"op": "cancel", "cl_ord_id", "orig_cl_ord_id"}``
- ``{"op": "amend", "cl_ord_id", "orig_cl_ord_id", "quantity", "limit_px"?, "end_ns"?}``
- ``{"op": "status", "cl_ord_id"}``

and receive the client's ``execution_report`` and ``request_reject`` messages as the saga publishes them
(the models' JSON, TCA included on the final report), plus ``{"type": "rejected" | "status" | "error"}``
answers of the endpoint itself. Bad JSON or an invalid request gets ``{"type": "error", "reason"}`` and
the connection stays open.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections import defaultdict, deque
from typing import Annotated, Any, Literal

from prometheus_client import Counter, Gauge
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from endpoint.config import EndpointConfig
from endpoint.desk import NewOrder, OrderDesk
from endpoint.risk import Refusal
from models import Message, OrdType, Side, Strategy, TimeInForce, now_ns
from runtime.logs import get_logger

log = get_logger("paceline.endpoint.native")

CONNECTIONS = Gauge("paceline_native_connections", "Native-protocol connections open")
ERRORS = Counter("paceline_native_errors_total", "Native-protocol requests refused as malformed", ["reason"])
AUTH_FAILED = Counter("paceline_native_auth_failures_total", "Connections refused for a bad token")
REFUSED = Counter(
    "paceline_native_refused_total",
    "Native-protocol connections closed by the endpoint, by reason",
    ["reason"],
)
RATE_WINDOW_S = 60.0


class FailureLimiter:
    """Failed authentications per source address over a sliding minute."""

    def __init__(self, limit: int, window_s: float = RATE_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, addr: str, now: float) -> deque[float]:
        q = self._fails[addr]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def blocked(self, addr: str) -> bool:
        with self._lock:
            q = self._recent(addr, time.monotonic())
            if not q:
                self._fails.pop(addr, None)  # the map holds only addresses failing now
            return len(q) >= self.limit

    def failed(self, addr: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(addr, now).append(now)
            if len(self._fails) > 4096:  # many addresses failing once: forget those outside the window
                for a in [a for a in self._fails if not self._recent(a, now)]:
                    del self._fails[a]


class Submit(BaseModel):
    op: Literal["submit"]
    cl_ord_id: str = Field(min_length=1, max_length=64)
    symbol: str
    side: Side
    quantity: int = Field(gt=0)
    ord_type: OrdType = OrdType.MARKET
    limit_px: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    time_in_force: TimeInForce = TimeInForce.DAY
    start_ns: int | None = None
    end_ns: int
    strategy: Strategy = Strategy.TWAP
    participation_rate: float | None = None
    policy: str | None = None


class Cancel(BaseModel):
    op: Literal["cancel"]
    cl_ord_id: str = Field(min_length=1, max_length=64)
    orig_cl_ord_id: str = Field(min_length=1, max_length=64)


class Amend(BaseModel):
    op: Literal["amend"]
    cl_ord_id: str = Field(min_length=1, max_length=64)
    orig_cl_ord_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)
    limit_px: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    end_ns: int | None = None


class Status(BaseModel):
    op: Literal["status"]
    cl_ord_id: str = Field(min_length=1, max_length=64)


Request = TypeAdapter[Any](Annotated[Submit | Cancel | Amend | Status, Field(discriminator="op")])


class NativeServer:
    def __init__(self, cfg: EndpointConfig, desk: OrderDesk, market_now: Any) -> None:
        self.cfg = cfg
        self.desk = desk
        self.market_now = market_now
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._open = 0
        self._per_client: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.limiter = FailureLimiter(cfg.native_auth_failures_per_min)

    def _tls(self) -> ssl.SSLContext | None:
        cert, key = self.cfg.native_tls_cert, self.cfg.native_tls_key
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            raise ValueError("native TLS needs both native_tls_cert and native_tls_key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        return ctx

    def start(self) -> None:
        tls = self._tls()
        self._server = serve(self._handle, self.cfg.native_host, self.cfg.native_port, ssl=tls,
                             max_size=self.cfg.native_max_message_bytes,
                             open_timeout=self.cfg.native_open_s)  # fmt: skip
        self._thread = threading.Thread(target=self._server.serve_forever, name="native-ws", daemon=True)
        self._thread.start()
        log.info("native protocol listening", port=self.cfg.native_port, tls=tls is not None)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    @staticmethod
    def _peer(conn: ServerConnection) -> str | None:
        """The client's address, or None when the socket is already closed: websockets' reader may close it
        (1009, a first message over the cap) before this connection's handler runs."""
        try:
            return str(conn.remote_address[0])
        except OSError:
            return None

    def _refuse(self, conn: ServerConnection, code: int, reason: str, text: str) -> None:
        REFUSED.labels(reason).inc()
        log.warning("native connection refused", reason=reason, remote=self._peer(conn))
        conn.close(code, text)

    def _handle(self, conn: ServerConnection) -> None:
        addr = self._peer(conn)
        if addr is not None and self.limiter.blocked(addr):
            self._refuse(conn, 1013, "rate_limited", "too many failed authentications from this address")
            return
        auth = (conn.request.headers.get("Authorization", "") if conn.request else "").removeprefix("Bearer ")
        client = self.cfg.client_by_token(auth.strip()) if auth else None
        if client is None:
            AUTH_FAILED.inc()
            if addr is not None:
                self.limiter.failed(addr)
            self._refuse(conn, 1008, "bad_token", "bad or missing token")
            return
        with self._lock:
            full = self._per_client[client.client_id] >= self.cfg.native_max_connections_per_client
            if not full:
                self._per_client[client.client_id] += 1
        if full:
            self._refuse(conn, 1013, "too_many_connections", "too many connections for this client")
            return
        try:
            self._session(conn, client.client_id)
        finally:
            with self._lock:
                self._per_client[client.client_id] -= 1

    def _session(self, conn: ServerConnection, client_id: str) -> None:
        send_lock = threading.Lock()

        def send(obj: dict[str, Any]) -> None:
            with send_lock:
                conn.send(json.dumps(obj))

        def sink(m: Message) -> None:
            with contextlib.suppress(ConnectionClosed):  # the client can ask for the status when back
                send(m.model_dump(mode="json"))

        detach = self.desk.attach(client_id, sink)
        with self._lock:
            self._open += 1
            CONNECTIONS.set(self._open)
        try:
            while True:
                try:
                    raw = conn.recv(timeout=self.cfg.native_idle_s)
                except TimeoutError:
                    self._refuse(conn, 1001, "idle", "idle timeout")
                    return
                reply = self._request(client_id, raw)
                if reply is not None:
                    send(reply)
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:  # websockets closed it: over max_size
                REFUSED.labels("message_too_big").inc()
                log.warning("native message over the size cap", client=client_id)
        finally:
            detach()
            with self._lock:
                self._open -= 1
                CONNECTIONS.set(self._open)

    def _request(self, client_id: str, raw: str | bytes) -> dict[str, Any] | None:
        recv_ns = now_ns()
        try:
            req = Request.validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            reason = "malformed" if first["type"].startswith("json") else "invalid"
            ERRORS.labels(reason).inc()
            where = ".".join(str(x) for x in first["loc"])
            return {"type": "error", "reason": reason, "text": f"{where}: {first['msg']}"[:200]}
        if isinstance(req, Submit):
            order = NewOrder(**req.model_dump(exclude={"op"}), recv_ns=recv_ns)
            refusal = self.desk.new_order(client_id, order, self.market_now)
            return None if refusal is None else _rejected(req.cl_ord_id, refusal)
        if isinstance(req, Cancel):
            refusal = self.desk.cancel(client_id, req.cl_ord_id, req.orig_cl_ord_id)
            return None if refusal is None else _rejected(req.cl_ord_id, refusal)
        if isinstance(req, Amend):
            refusal = self.desk.amend(client_id, req.cl_ord_id, req.orig_cl_ord_id, req.quantity,
                                      limit_px=req.limit_px, end_ns=req.end_ns)  # fmt: skip
            return None if refusal is None else _rejected(req.cl_ord_id, refusal)
        o = self.desk.status(client_id, req.cl_ord_id)
        if o is None:
            return _rejected(req.cl_ord_id, Refusal("unknown_order", f"unknown order {req.cl_ord_id}"))
        return {"type": "status", "cl_ord_id": o.cl_ord_id, "parent_id": o.parent.parent_id,
                "ord_status": o.status.value, "order_qty": o.parent.quantity, "cum_qty": o.cum_qty,
                "avg_px": o.avg_px}  # fmt: skip


def _rejected(cl_ord_id: str, r: Refusal) -> dict[str, Any]:
    return {"type": "rejected", "cl_ord_id": cl_ord_id, "reason": r.code, "text": r.text}
