"""Frames of the serial protocol: COBS byte stuffing, CRC-32 and the 6-byte header (mcu/PROTOCOL.md).

Contract: `encode_frame(frame)` returns the bytes to write, delimiter included; `decode_frame(body)` takes the
bytes between two delimiters and returns a `Frame` or raises `FrameError` carrying the status the device
would answer with; `FrameSplitter.feed(data)` yields the bodies between delimiters from a byte stream, a body longer
than its `max_body` cut to that length as an `OversizedBody` (the firmware answers such a frame FRAME_TOO_LONG).
Nothing here knows commands: the header layout and limits are passed in or fixed by the definition.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

HEADER = struct.Struct("<BBHH")  # command, status, seq, length
CRC = struct.Struct("<I")
DELIMITER = 0


class ProtocolError(Exception):
    """Base of every error raised by the protocol codec."""


class FrameError(ProtocolError):
    """A frame that cannot be decoded; `status` is the protocol status name that describes it."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Frame:
    command: int
    status: int
    seq: int
    payload: bytes = b""


def crc32(data: bytes, crc: int = 0) -> int:
    """CRC-32/ISO-HDLC, as zlib and the firmware compute it."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out += b"\xff" + block
                block.clear()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            raise FrameError("BAD_FRAME", f"zero byte inside a COBS frame at {i}")
        end = i + code
        if end > len(data):
            raise FrameError("BAD_FRAME", f"COBS code {code} at {i} runs past the frame end ({len(data)} bytes)")
        block = data[i + 1 : end]
        if 0 in block:
            raise FrameError("BAD_FRAME", "zero byte inside a COBS block")
        out += block
        i = end
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def encode_frame(frame: Frame) -> bytes:
    """Header, payload and CRC, COBS-encoded, followed by the delimiter."""
    body = HEADER.pack(frame.command, frame.status, frame.seq & 0xFFFF, len(frame.payload)) + frame.payload
    return cobs_encode(body + CRC.pack(crc32(body))) + bytes([DELIMITER])


def decode_frame(encoded: bytes, max_payload: int | None = None) -> Frame:
    """Decode the bytes between two delimiters; every length and the CRC are checked."""
    body = cobs_decode(encoded)
    if len(body) < HEADER.size + CRC.size:
        raise FrameError("BAD_FRAME", f"{len(body)} bytes is shorter than header and CRC ({HEADER.size + CRC.size})")
    command, status, seq, length = HEADER.unpack_from(body)
    (expected,) = CRC.unpack_from(body, len(body) - CRC.size)
    if crc32(body[: -CRC.size]) != expected:
        raise FrameError("BAD_CRC", f"CRC-32 mismatch in a frame of {len(body)} bytes")
    payload = body[HEADER.size : -CRC.size]
    if length != len(payload):
        raise FrameError("BAD_LENGTH", f"header says {length} payload bytes, frame has {len(payload)}")
    if max_payload is not None and length > max_payload:
        raise FrameError("FRAME_TOO_LONG", f"payload of {length} bytes exceeds {max_payload}")
    return Frame(command, status, seq, payload)


class OversizedBody(bytes):
    """The first `max_body` bytes of a body that had more (`length`): a frame too long for the receiver's buffer. It is
    still bytes, so a reader that ignores the difference sees a body that does not decode."""

    length: int


class FrameSplitter:
    """Cuts a byte stream at delimiters; empty bodies (back-to-back delimiters) are skipped. A body longer than
    `max_body` is kept to that length and yielded as an `OversizedBody`, as the firmware's receive buffer
    (mcu/src/protocol/session.c) keeps what fits and flags the overflow."""

    def __init__(self, max_body: int = 1 << 16):
        self.max_body = max_body
        self._buffer = bytearray()
        self._length = 0  # bytes of the current body, those past max_body included

    def feed(self, data: bytes) -> Iterator[bytes]:
        for byte in data:
            if byte == DELIMITER:
                if self._length > self.max_body:
                    body = OversizedBody(self._buffer)
                    body.length = self._length
                    yield body
                elif self._buffer:
                    yield bytes(self._buffer)
                self._buffer.clear()
                self._length = 0
            else:
                self._length += 1
                if self._length <= self.max_body:
                    self._buffer.append(byte)

    @property
    def pending(self) -> bytes:
        """Bytes received since the last delimiter (e.g. a banner still arriving)."""
        return bytes(self._buffer)
