"""FIX over a plain socket, for tests: every byte is ours, so it can be wrong on purpose (bad checksums,
missing tags)."""

from __future__ import annotations

import socket
import time
from typing import Any

from models.fix import utc


class RawFix:
    """FIX over a plain socket: every byte is ours, so it can be wrong on purpose."""

    def __init__(
        self, port: int, comp_id: str = "CLIENT2", target: str = "PACELINE", *, source: str | None = None
    ) -> None:
        """``source``: the local address to connect from (another loopback address, 127.0.0.2)."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=10, source_address=(source, 0) if source else None
        )
        self.comp_id, self.target = comp_id, target
        self.seq = 1
        self.buf = b""

    @staticmethod
    def frame(body_fields: list[tuple[int, str]], *, bad_checksum: bool = False) -> bytes:
        body = "".join(f"{t}={v}\x01" for t, v in body_fields).encode()
        head = f"8=FIX.4.4\x019={len(body)}\x01".encode()
        total = sum(head + body) % 256
        return head + body + f"10={(total + (1 if bad_checksum else 0)) % 256:03d}\x01".encode()

    def send(self, msg_type: str, body: list[tuple[int, str]], *, bad_checksum: bool = False,
             consume_seq: bool = True) -> None:  # fmt: skip
        now = utc(time.time_ns())
        header = [(35, msg_type), (49, self.comp_id), (56, self.target), (34, str(self.seq)), (52, now)]
        self.sock.sendall(self.frame(header + body, bad_checksum=bad_checksum))
        if consume_seq:
            self.seq += 1

    def logon(self, extra: list[tuple[int, str]] | None = None) -> dict[int, str]:
        self.send("A", [(98, "0"), (108, "30"), (141, "Y"), *(extra or [])])
        return self.read(lambda f: f.get(35) == "A")

    def read(self, pred: Any, timeout_s: float = 10) -> dict[int, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while b"\x0110=" in self.buf:
                end = self.buf.index(b"\x0110=") + 8
                raw, self.buf = self.buf[:end], self.buf[end:]
                f = {int(k): v for k, _, v in (p.partition("=") for p in raw.decode().split("\x01") if p)}
                if pred(f):
                    return f
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError("the acceptor closed the connection")
            self.buf += chunk
        raise AssertionError("no matching message")

    def close(self) -> None:
        self.sock.close()
