"""How a client reaches a VirtualDevice: over TCP, one client at a time, exactly as QEMU exposes the emulated board's
UART (`Server`, with `parse_listen` for its socket:// URL), or inside this process as a pyserial-like port (`VirtualPort`).
Each connection starts with a BOOT event, as a board does after power-on."""

from __future__ import annotations

import select
import socket
import threading
import time
from urllib.parse import urlsplit

from bench.virtual.session import VirtualDevice


class VirtualPort:
    """A VirtualDevice as a pyserial-like port inside this process (no socket, no thread), for tests that drive it
    with bench.link.device.Device: its BOOT event is there on open, and what is written is answered at once. `read(n)`
    returns up to n bytes of what it sent; with none, it waits `timeout` seconds (nothing can arrive meanwhile) and
    returns b""."""

    portstr = "virtual://in-process"

    def __init__(self, device: VirtualDevice):
        self.device = device
        self.timeout: float | None = None
        self._out = bytearray(device.power_on())

    def write(self, data: bytes) -> int:
        self._out += self.device.receive(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._out:
            time.sleep(self.timeout or 0)
        chunk = bytes(self._out[:size])
        del self._out[:size]
        return chunk

    def close(self) -> None:
        self.device.engine.close()


def parse_listen(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "socket" or not parts.hostname or parts.port is None:
        raise ValueError(f"--listen {url!r}: expected socket://<host>:<port> (port 0 picks a free one)")
    return parts.hostname, parts.port


class Server:
    """A TCP listener serving one VirtualDevice to one client at a time. `start()` runs it in a thread."""

    def __init__(self, device: VirtualDevice, host: str = "127.0.0.1", port: int = 0):
        self.device = device
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(4)
        self.host, self.port = self.listener.getsockname()[:2]
        self.url = f"socket://{self.host}:{self.port}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            if not select.select([self.listener], [], [], 0.2)[0]:
                continue
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._serve(connection)

    def _serve(self, connection: socket.socket) -> None:
        self.device.engine.restart() if self.device.crashed else None
        try:
            connection.sendall(self.device.power_on())
            while not self._stop.is_set():
                if not select.select([connection], [], [], 0.2)[0]:
                    continue
                data = connection.recv(65536)
                if not data:
                    return
                reply = self.device.receive(data)
                if reply:
                    connection.sendall(reply)
        except OSError:
            return  # the client went away mid-reply

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, name="virtual-device", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.listener.close()
        self.device.engine.close()
