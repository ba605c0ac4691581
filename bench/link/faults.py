"""Fault injection for the serial link: a pyserial URL handler that damages bytes on their way.

bench.link.serial_handlers registers the scheme (bench.link.ports.open_port does, or call
`bench.link.serial_handlers.register()` before `serial.serial_for_url`); then
`serial.serial_for_url("faulty://127.0.0.1:<port>?corrupt=0.01&drop=0.001&seed=1&direction=both")` is a
socket:// port (QEMU, bench.virtual.device) whose bytes are each, independently, replaced by another value
with probability `corrupt` and lost with probability `drop`, in the direction(s) chosen (`read`, `write`
or `both`). `seed` makes a run repeatable. The counters (`bytes`, `corrupted`, `dropped`) are on the
port object's `faults` attribute, so a test can state what the link went through.

Why a URL handler: every layer above (bench.link.device.Device, bench.on_device.run --port) runs unchanged, the way it
does against a real noisy UART.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import serial
from serial.urlhandler import protocol_socket

SCHEME = "faulty"


@dataclass
class FaultCounters:
    corrupt: float = 0.0
    drop: float = 0.0
    direction: str = "both"
    bytes: int = 0
    corrupted: int = 0
    dropped: int = 0


class Serial(protocol_socket.Serial):
    """socket:// with byte damage (see the module docstring)."""

    faults: FaultCounters
    _random: random.Random

    def from_url(self, url):
        parts = urlsplit(url)
        if parts.scheme != SCHEME:
            raise serial.SerialException(f"expected faulty://<host>:<port>?corrupt=P&drop=P&seed=N, not {url!r}")
        options = {k: v[0] for k, v in parse_qs(parts.query, True).items()}
        try:
            self.faults = FaultCounters(
                corrupt=float(options.pop("corrupt", 0)), drop=float(options.pop("drop", 0)), direction=options.pop("direction", "both")
            )
            self._random = random.Random(int(options.pop("seed", 0)))
        except ValueError as error:
            raise serial.SerialException(f"{url}: {error}") from error
        if options or self.faults.direction not in ("read", "write", "both"):
            raise serial.SerialException(f"{url}: unknown options {sorted(options)} (known: corrupt, drop, seed, direction)")
        return super().from_url(f"socket://{parts.hostname}:{parts.port}")

    def _damage(self, data: bytes, direction: str) -> bytes:
        f = self.faults
        if f.direction not in (direction, "both") or not data:
            return bytes(data)
        out = bytearray()
        for byte in data:
            f.bytes += 1
            roll = self._random.random()
            if roll < f.drop:
                f.dropped += 1
                continue
            if roll < f.drop + f.corrupt:
                f.corrupted += 1
                byte ^= self._random.randrange(1, 256)
            out.append(byte)
        return bytes(out)

    def read(self, size=1):
        return self._damage(super().read(size), "read")

    def write(self, data):
        super().write(self._damage(bytes(data), "write"))
        return len(data)
