"""A loopback HTTP fault proxy for S3 tests: put it in front of MinIO.

Each client connection gets its own upstream connection. The proxy reads request heads
(and forwards bodies by ``Content-Length``), so it can decide *per request*:

- ``pass``: forward the request; the response bytes flow back untouched;
- ``503`` / ``500``: answer with an S3 error body and close the connection, without
  forwarding (the body of a PUT, if any, is never read);
- ``reset``: close the client connection with a TCP RST before forwarding;
- ``reset-mid``: forward the request, then reset the connection after the first bytes of
  the response (a dropped download or upload answer).

``rate`` is the share of requests faulted; ``down=True`` faults every request (an
outage). Only 127.0.0.1 is used; every socket has a timeout, so nothing runs forever.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

FAULTS = ("503", "500", "reset", "reset-mid")
_BODY = {
    "503": b"<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>injected</Message></Error>",
    "500": b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>injected</Message></Error>",
}
_REASON = {"503": "Service Unavailable", "500": "Internal Server Error"}


def _rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class FaultProxy:
    """Listen on 127.0.0.1:<port> and forward to ``upstream_port`` with injected faults."""

    upstream_port: int
    rate: float = 0.1
    seed: int = 1
    down: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def endpoint_url(self) -> str:
        assert self._sock is not None
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> FaultProxy:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.5)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()

    def _decide(self) -> str:
        with self._lock:
            fault = (
                self._rng.choice(FAULTS) if self.down or self._rng.random() < self.rate else "pass"
            )
            self.counts[fault] += 1
            self.counts["requests"] += 1
            return fault

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(30)
        upstream: socket.socket | None = None
        cut_after_response = threading.Event()
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(b":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get(b"content-length", b"0"))
                if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    fault = "pass-through"  # cannot frame: relay the rest untouched
                else:
                    fault = self._decide()
                if fault in ("503", "500"):
                    body = _BODY[fault]
                    client.sendall(
                        f"HTTP/1.1 {fault} {_REASON[fault]}\r\nContent-Type: application/xml\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
                    return
                if fault == "reset":
                    _rst(client)
                    return
                if upstream is None:
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 10)
                    upstream.settimeout(30)
                    threading.Thread(
                        target=self._responses, args=(upstream, client, cut_after_response),
                        daemon=True,
                    ).start()  # fmt: skip
                if fault == "reset-mid":
                    cut_after_response.set()
                upstream.sendall(head + b"\r\n\r\n")
                if fault == "pass-through":
                    upstream.sendall(buf)
                    while data := client.recv(65536):
                        upstream.sendall(data)
                    return
                # Forward the body (it may arrive after a 100 Continue from upstream).
                sent = min(length, len(buf))
                upstream.sendall(buf[:sent])
                buf = buf[sent:]
                while sent < length:
                    data = client.recv(min(65536, length - sent))
                    if not data:
                        return
                    upstream.sendall(data)
                    sent += len(data)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.close()

    @staticmethod
    def _responses(upstream: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if cut.is_set():
                    client.sendall(data[: max(1, len(data) // 3)])
                    _rst(client)
                    upstream.close()
                    return
                client.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
