"""Who may use the native protocol and how much, against the real WebSocket server (no broker: the desk's
requests are kept): hashed tokens, TLS, failed authentications rate-limited per address, caps on
connections per client, message size and idle time, each answered with a close code and a reason."""

from __future__ import annotations

import faulthandler
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import ClientConnection, connect

from endpoint.config import Client, EndpointConfig, load
from endpoint.desk import OrderDesk
from endpoint.native import REFUSED, NativeServer
from endpoint.risk import RiskGate
from paceline.ops.stack import free_port
from runtime.secrets import hash_token

TOKEN = "native-token-0123456789"


Serve = Callable[..., NativeServer]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    servers: list[NativeServer] = []

    def make(**kw: object) -> NativeServer:
        kw.setdefault("native_open_s", 30.0)  # as long as the client waits (``_open``)
        cfg = EndpointConfig(
            fix_port=0, native_port=free_port(), state_dir=tmp_path / "ep", symbols=("AAPL",),
            clients=(Client(client_id="CLIENT1", comp_id="CLIENT1", token_hash=hash_token(TOKEN)),),
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        desk = OrderDesk(lambda topic, m, key: None, RiskGate({}), cfg.symbols)
        srv = NativeServer(cfg, desk, lambda symbol: None)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


def _open(srv: NativeServer, token: str = TOKEN, **kw: object) -> ClientConnection:
    scheme = "wss" if srv.cfg.native_tls_cert else "ws"
    # Not websockets' 10 s: once in a CI run under full load the TLS opening handshake took longer (the client
    # timed out once; the server, at its own 10 s, dropped the connection in another run: ``native_open_s``).
    kw.setdefault("open_timeout", 30)
    # Such a wait is not load: this module's seven tests take 2-6 s, beside four CPU burners too, and the
    # timeout has not been reproduced outside CI. Should an opening take 10 s, every thread's stack goes to
    # stderr from faulthandler's own thread (it needs no GIL): the next failure's report shows who waits.
    faulthandler.dump_traceback_later(10, exit=False)
    try:
        return connect(f"{scheme}://127.0.0.1:{srv.cfg.native_port}/",
                       additional_headers={"Authorization": f"Bearer {token}"}, **kw)  # type: ignore[arg-type]  # fmt: skip
    finally:
        faulthandler.cancel_dump_traceback_later()


def _closed(ws: ClientConnection, timeout: float = 5) -> tuple[int, str]:
    """The close code and reason the server sent."""
    with pytest.raises(ConnectionClosed) as exc:
        ws.recv(timeout=timeout)
    assert exc.value.rcvd is not None
    return exc.value.rcvd.code, exc.value.rcvd.reason


def _status(ws: ClientConnection) -> dict[str, object]:
    ws.send(json.dumps({"op": "status", "cl_ord_id": "X1"}))
    reply: dict[str, object] = json.loads(ws.recv(timeout=5))
    return reply


def _count(reason: str) -> float:
    return float(REFUSED.labels(reason)._value.get())


def test_a_hashed_token_logs_on_and_a_wrong_one_is_closed_1008(serve: Serve) -> None:
    srv = serve()
    assert srv.cfg.clients[0].token_hash != TOKEN  # only the hash is configured
    with _open(srv) as ws:
        assert _status(ws)["reason"] == "unknown_order"  # served: an answer to its request
    before = _count("bad_token")
    with _open(srv, "wrong-token-0123456789") as bad:
        assert _closed(bad) == (1008, "bad or missing token")
    assert _count("bad_token") == before + 1


def test_failed_authentications_are_rate_limited_per_address_and_a_live_session_trades_on(
    serve: Serve,
) -> None:
    srv = serve(native_auth_failures_per_min=3)
    with _open(srv) as live:
        before = _count("rate_limited")
        for _ in range(3):
            with _open(srv, "guess-0123456789abcdef") as bad:
                assert _closed(bad)[0] == 1008
        # A flood from the same address: refused at once, without a look at the token (the right one too).
        answers: list[tuple[int, str]] = []

        def knock() -> None:
            with _open(srv, "guess-0123456789abcdef") as bad:
                answers.append(_closed(bad))

        threads = [threading.Thread(target=knock) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert answers == [(1013, "too many failed authentications from this address")] * 20
        with _open(srv) as late:
            assert _closed(late)[0] == 1013
        assert _count("rate_limited") == before + 21
        assert _status(live)["reason"] == "unknown_order"  # the established session never noticed


def test_connections_per_client_are_capped(serve: Serve) -> None:
    srv = serve(native_max_connections_per_client=2)
    with _open(srv) as a, _open(srv) as b:
        assert _status(a) and _status(b)
        with _open(srv) as c:
            assert _closed(c) == (1013, "too many connections for this client")
    with _open(srv) as again:  # the slots are free once those closed
        assert _status(again)["type"] == "rejected"


def test_an_oversized_message_closes_1009_and_an_idle_connection_1001(serve: Serve) -> None:
    srv = serve(native_max_message_bytes=2048, native_idle_s=1.0)
    before = _count("message_too_big")
    with _open(srv) as ws:
        ws.send(json.dumps({"op": "status", "cl_ord_id": "x" * 5000}))
        assert _closed(ws)[0] == 1009
    deadline = time.monotonic() + 5
    while _count("message_too_big") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count("message_too_big") == before + 1
    with _open(srv) as idle:
        t0 = time.monotonic()
        assert _closed(idle) == (1001, "idle timeout")
        assert 0.8 < time.monotonic() - t0 < 4


def test_a_connection_closed_before_its_handler_runs_is_still_counted(serve: Serve) -> None:
    """Under load, websockets' reader can close a connection (1009: its first message over the cap) before
    the handler runs, when the socket has no peer address any more: the handler must not crash on it, and
    the refusal is counted like any other."""
    from types import SimpleNamespace

    from websockets.exceptions import ConnectionClosedError
    from websockets.frames import Close

    class ClosedFirst:
        request = SimpleNamespace(headers={"Authorization": f"Bearer {TOKEN}"})

        @property
        def remote_address(self) -> tuple[str, int]:
            raise OSError(9, "Bad file descriptor")

        def recv(self, timeout: float | None = None) -> str:
            raise ConnectionClosedError(None, Close(1009, "over the size cap"))

        def send(self, message: str) -> None:
            raise AssertionError("nothing is sent on a closed connection")

    srv = serve(native_max_message_bytes=2048, native_max_connections_per_client=1)
    before = _count("message_too_big")
    srv._handle(ClosedFirst())  # type: ignore[arg-type]
    assert _count("message_too_big") == before + 1
    with _open(srv) as ws:  # its one connection slot was given back
        assert _status(ws)["type"] == "rejected"


def test_tls_when_a_certificate_is_configured(serve: Serve, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    srv = serve(native_tls_cert=cert, native_tls_key=key)
    ctx = ssl.create_default_context(cafile=str(cert))
    with _open(srv, ssl=ctx) as ws:
        assert _status(ws)["type"] == "rejected"
    with pytest.raises((InvalidMessage, ConnectionError, OSError)):  # plain ws:// to a TLS port
        connect(f"ws://127.0.0.1:{srv.cfg.native_port}/", open_timeout=3).close()


def test_demo_credentials_stay_on_loopback(tmp_path: Path) -> None:
    shipped = load()
    assert all(c.demo for c in shipped.clients) and shipped.exposed_demo_credentials() == []
    wide = shipped.model_copy(update={"native_host": "0.0.0.0", "fix_allowed_addresses": ()})
    why = wide.exposed_demo_credentials()
    assert any("native protocol listens on 0.0.0.0" in w for w in why)
    assert any("FIX logons for CLIENT1 are allowed from any" in w for w in why)
    assert wide.model_copy(update={"allow_demo_credentials_anywhere": True}).exposed_demo_credentials() == []
    # Credentials of one's own, from a file outside the repository, replace the demo ones.
    creds = tmp_path / "creds.toml"
    creds.write_text(f'[CLIENT1]\ntoken_hash = "{hash_token(TOKEN)}"\n')
    own = load(credentials=creds)
    c1 = own.client("CLIENT1")
    assert c1 is not None and not c1.demo and c1.password_hash is None
    assert own.client_by_token(TOKEN) is c1 and own.client_by_token("demo-token-client1-0123456789") is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[NOBODY]\ntoken_hash = "x"\n')
    with pytest.raises(ValueError, match="unknown clients NOBODY"):
        load(credentials=bad)
