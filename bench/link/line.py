"""The serial line's rate and damage: how long bytes take on it, the estimated byte damage rate, and the upload chunk
that gets the most input through at that rate.

`line_rate` / `bytes_time_s` scale deadlines by the bytes of an exchange (a socket, having no line rate, is timed as
a slow UART). `LineEstimate` follows the share of recent exchanges that failed; `best_chunk` turns its byte error
rate into a LOAD_INPUT chunk: a noisy line gets short frames that get through, a clean one full chunks.
"""

from __future__ import annotations

import math

from bench.link.protocol import UART_BAUD

BITS_PER_BYTE = 10  # 8N1 on a UART: start + 8 data + stop
DEFAULT_BAUD = UART_BAUD  # what the firmware opens its UART at (mcu/protocol/protocol.json, "uart")
# A socket:// or loop:// port has no line rate; timeouts are scaled as if it were this slow UART, which
# errs on the long side (QEMU's emulated UART may be slower than the host's loopback).
ASSUMED_SOCKET_BAUD = 115_200
MIN_CHUNK = 16
FRAME_OVERHEAD = 6 + 4 + 2  # header, CRC, COBS code bytes and delimiter (roughly)
# The line's damage rate is estimated from the last exchanges (weights decay by ESTIMATE_DECAY per exchange, about
# 50 exchanges' memory), so chunks shrink within a few failures and grow back as clean exchanges accumulate.
ESTIMATE_DECAY = 0.98
# What one exchange costs besides its bytes (the device's turnaround, the host's read loop), as bytes' worth of
# line time. It changes the best chunk where corruption is 0.5 % (128 bytes, not 64) and 3 % (32, not 16); at 1 % it is
# 64 either way. The 48 is an estimate, not a measured figure.
ROUND_TRIP_BYTES = 48


def line_rate(url: str, baud: int) -> int | None:
    """Bytes per second the line allows, or None for a socket (no line rate)."""
    return None if url.startswith(("socket://", "loop://", "faulty://")) else baud // BITS_PER_BYTE


def bytes_time_s(count: int, url: str, baud: int) -> float:
    return count * BITS_PER_BYTE / ((line_rate(url, baud) and baud) or ASSUMED_SOCKET_BAUD)


class LineEstimate:
    """The per-byte damage probability p of the line, from the outcomes of recent exchanges: an exchange of n bytes
    (request and reply frames) gets through with probability (1-p)^n, so p = -ln(1 - failed share) / mean n."""

    def __init__(self) -> None:
        # A prior worth a few clean exchanges of 100 bytes: full chunks until the line shows damage.
        self.exchanges, self.failures, self.bytes = 4.0, 0.0, 400.0

    def record(self, nbytes: int, failed: bool) -> None:
        self.exchanges = self.exchanges * ESTIMATE_DECAY + 1
        self.failures = self.failures * ESTIMATE_DECAY + failed
        self.bytes = self.bytes * ESTIMATE_DECAY + nbytes

    @property
    def byte_error_rate(self) -> float:
        share = min(self.failures / self.exchanges, 0.99)
        return -math.log1p(-share) / (self.bytes / self.exchanges)


def best_chunk(p: float, limit: int, reply_bytes: int) -> int:
    """The LOAD_INPUT chunk (a power of two from MIN_CHUNK, or `limit`) that moves the most input bytes per unit of
    line time at byte damage rate p: c * (1-p)^n / (n + ROUND_TRIP_BYTES), n the bytes of the exchange."""
    sizes = sorted({min(MIN_CHUNK << k, limit) for k in range(12) if MIN_CHUNK << k <= 2 * limit} | {limit})

    def goodput(c: int) -> float:
        n = c + 8 + reply_bytes + 2 * FRAME_OVERHEAD
        return c * (1 - p) ** n / (n + ROUND_TRIP_BYTES)

    return max(sizes, key=goodput)
