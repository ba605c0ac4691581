"""A request/reply link over any byte stream (serial port, TCP socket to QEMU, a pipe to a host build).

Contract: `Link(write, read)` where `write(bytes)` sends and `read(timeout_s)` returns the bytes that
arrived (b"" on timeout). `request(command, **fields)` sends one request with the next sequence number and
returns the device's reply `Message` with that seq, raising `LinkTimeout` when none comes and `LinkError`
when the reply is not for that request; events (BOOT, FAULT) seen meanwhile are kept in `events`. Bodies
that do not decode are kept in `garbage` (e.g. noise before the first delimiter). No retries here:
bench.serial adds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.protocol import Command, FrameSplitter, Message, ProtocolError, decode_message, encode_request


class LinkError(ProtocolError):
    """A reply that does not answer the request (wrong seq or command)."""


class LinkTimeout(LinkError):
    """No reply within the timeout."""


class Link:
    def __init__(self, write: Callable[[bytes], Any], read: Callable[[float], bytes], timeout_s: float = 10.0):
        self.write = write
        self.read = read
        self.timeout_s = timeout_s
        self.seq = 0
        self.events: list[Message] = []
        self.garbage: list[bytes] = []
        self._splitter = FrameSplitter()
        self._pending: list[Message] = []

    def next_message(self, timeout_s: float | None = None) -> Message:
        """The next decodable device frame (events included)."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(f"no frame within {timeout_s or self.timeout_s:.1f} s")
            for body in self._splitter.feed(self.read(min(left, 0.5))):
                try:
                    self._pending.append(decode_message(body))
                except ProtocolError:
                    self.garbage.append(body)
        return self._pending.pop(0)

    def wait_event(self, name: str, timeout_s: float | None = None) -> Message:
        while True:
            message = self.next_message(timeout_s)
            if message.kind == "event":
                self.events.append(message)
                if message.name == name:
                    return message

    def reply_to(self, seq: int, timeout_s: float | None = None) -> Message:
        """The next reply, which must carry `seq` (events are set aside)."""
        while True:
            message = self.next_message(timeout_s)
            if message.kind == "event":
                self.events.append(message)
                continue
            if message.seq != seq and message.kind != "unparsed":
                raise LinkError(f"reply seq {message.seq} to request seq {seq}")
            return message

    def request(self, command: Command, timeout_s: float | None = None, **fields: Any) -> Message:
        self.seq = (self.seq + 1) & 0xFFFF
        self.write(encode_request(command, self.seq, **fields))
        reply = self.reply_to(self.seq, timeout_s)
        if reply.kind == "reply" and reply.name != command.name:
            raise LinkError(f"{reply.name} reply to a {command.name} request")
        return reply

    def send_raw(self, data: bytes, timeout_s: float | None = None) -> Message:
        """Write arbitrary bytes (a malformed frame, say) and return the next reply."""
        self.write(data)
        return self._next_reply(timeout_s)

    def _next_reply(self, timeout_s: float | None) -> Message:
        while True:
            message = self.next_message(timeout_s)
            if message.kind != "event":
                return message
            self.events.append(message)


class DeviceError(ProtocolError):
    """The device answered with an error status; `reply` holds it (status, detail, message)."""

    def __init__(self, reply: Message):
        text = reply.fields.get("message", b"")
        super().__init__(f"{reply.name}: {reply.status.name} (detail {reply.fields.get('detail')}) {text.decode('ascii', 'replace')}")
        self.reply = reply


def checked(reply: Message) -> Message:
    if not reply.ok:
        raise DeviceError(reply)
    return reply


def load_input(link: Link, data: bytes, chunk: int = 256) -> int:
    """Upload a whole input tensor in chunks; returns the device's CRC-32, checked against ours."""
    from bench.protocol import crc32

    reply = None
    for offset in range(0, len(data), chunk):
        reply = checked(link.request(Command.LOAD_INPUT, offset=offset, data=data[offset : offset + chunk]))
    if reply is None or reply.fields["received"] != len(data) or reply.fields["crc32"] != crc32(data):
        raise LinkError(f"input upload incomplete or corrupted: {reply.fields if reply else 'no reply'}")
    return reply.fields["crc32"]


def invoke(link: Link, data: bytes, timeout_s: float | None = None) -> tuple[bytes, int]:
    """Upload `data`, run one inference; returns (output bytes, ticks of Invoke())."""
    crc = load_input(link, data)
    reply = checked(link.request(Command.INVOKE, timeout_s=timeout_s))
    if reply.fields["input_crc32"] != crc:
        raise LinkError("INVOKE ran on an input other than the one uploaded")
    return reply.fields["output"], reply.fields["ticks"]


def read_profile(link: Link) -> list[dict]:
    """All per-op records of the last INVOKE, page by page."""
    records: list[dict] = []
    while True:
        reply = checked(link.request(Command.PROFILE, first=len(records)))
        records += reply.fields["records"]
        if len(records) >= reply.fields["total"] or not reply.fields["count"]:
            return records
